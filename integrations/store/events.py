"""Installed integrations and their integration events, secrets sealed at rest.

Every write that changes what matching or delivery sees bumps the configuration version in
the same transaction (:func:`~integrations.store.engine.bump_config_version`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from integrations.enums import Entity, EventType
from integrations.models import (
    MASK,
    FilterCriteria,
    IntegrationEventIn,
    Notifier,
    Rule,
    is_credential_header,
)
from integrations.store.engine import bump_config_version, chunks, owned
from integrations.store.installed import InstalledStore
from integrations.store.records import (
    InstalledState,
    StoredEvent,
    keep_omitted_secrets,
    split_secrets,
)
from integrations.tables import (
    FilterCriteriaRow,
    FilterRuleRow,
    InstalledIntegrationRow,
    IntegrationEventRow,
    utcnow,
)


class EventStore(InstalledStore):
    """Integration events (and, from :class:`InstalledStore`, their installed integrations)."""

    # -- integration events ----------------------------------------------------------------

    def _parents(
        self, s: Session, installed_ids: Collection[str]
    ) -> dict[str, tuple[Notifier | None, InstalledState]]:
        """The base notifier and state of each of these installed integrations."""
        found: dict[str, tuple[Notifier | None, InstalledState]] = {}
        for chunk in chunks(sorted(installed_ids)):
            rows = s.execute(
                select(
                    InstalledIntegrationRow.id,
                    InstalledIntegrationRow.base_notifier,
                    InstalledIntegrationRow.base_notifier_secrets,
                    InstalledIntegrationRow.state,
                ).where(InstalledIntegrationRow.id.in_(chunk))
            )
            for key, public, sealed, state in rows:
                found[key] = (self._open_notifier(public, sealed), InstalledState(state))
        return found

    def _event(
        self,
        row: IntegrationEventRow,
        parent: tuple[Notifier | None, InstalledState] = (None, InstalledState.ENABLED),
    ) -> StoredEvent:
        config = json.loads(row.config)
        hidden = self._box.open(row.notifier_secrets)
        for i, value in hidden.pop("headers", {}).items():
            config["headers"][int(i)]["value"] = value
        for i, value in hidden.pop("depHeaders", {}).items():
            config["depEvent"]["headers"][int(i)]["value"] = value
        if config.get("notifier") is not None:
            config["notifier"].update(hidden)
        if row.criteria is not None:
            config["filterCriteria"] = FilterCriteria(
                id=row.criteria.id,
                name=row.criteria.name,
                matchType=row.criteria.match_type,  # type: ignore[arg-type]
                rules=[
                    Rule(
                        id=r.id,
                        resourceType=r.resource_type,  # type: ignore[arg-type]
                        key=r.key,
                        operator=r.operator,  # type: ignore[arg-type]
                        value=r.value,
                    )
                    for r in row.criteria.rules
                ],
            )
        return StoredEvent(
            id=row.id,
            tenant_id=row.tenant_id,
            installed_id=row.installed_id,
            active=row.active,
            disabled_reason=row.disabled_reason,
            spec=IntegrationEventIn.model_validate(config),
            created_at=row.created_at,
            updated_at=row.updated_at,
            base_notifier=parent[0],
            installed_state=parent[1],
        )

    def _event_of(self, s: Session, row: IntegrationEventRow) -> StoredEvent:
        parents = self._parents(s, [row.installed_id])
        return self._event(row, parents.get(row.installed_id, (None, InstalledState.ENABLED)))

    def _write(self, row: IntegrationEventRow, spec: IntegrationEventIn) -> None:
        """Put ``spec`` in ``row``: its public config, its sealed secrets, its criteria."""
        config = spec.model_dump(mode="json", exclude={"filterCriteria", "notifier"})
        hidden: dict[str, Any] = {}
        if spec.notifier is not None:
            config["notifier"], hidden = split_secrets(spec.notifier)
        # Header values that are credentials (Authorization, X-Api-Key...) are sealed like
        # notifier secrets; the stored config keeps a mask in their place.
        sealed_headers = {
            str(i): h["value"]
            for i, h in enumerate(config["headers"])
            if is_credential_header(h["key"])
        }
        for i in sealed_headers:
            config["headers"][int(i)]["value"] = MASK
        if sealed_headers:
            hidden["headers"] = sealed_headers
        dependent = config.get("depEvent")
        if dependent:
            sealed_dep = {
                str(i): h["value"]
                for i, h in enumerate(dependent["headers"])
                if is_credential_header(h["key"])
            }
            for i in sealed_dep:
                dependent["headers"][int(i)]["value"] = MASK
            if sealed_dep:
                hidden["depHeaders"] = sealed_dep
        row.name = spec.name
        row.entity = spec.entity.value
        row.event_type = spec.eventType.value
        row.config = json.dumps(config)
        row.notifier_secrets = self._box.seal(hidden)
        row.criteria = None
        if spec.filterCriteria is not None:
            row.criteria = FilterCriteriaRow(
                name=spec.filterCriteria.name or spec.name,
                match_type=spec.filterCriteria.matchType.value,
                rules=[
                    FilterRuleRow(
                        position=i,
                        resource_type=r.resourceType.value if r.resourceType else None,
                        key=r.key,
                        operator=r.operator.value,
                        value=r.value,
                    )
                    for i, r in enumerate(spec.filterCriteria.rules)
                ],
            )

    def create_event(
        self, tenant_id: str, installed_id: str, spec: IntegrationEventIn
    ) -> StoredEvent:
        """Store an integration event; filter criteria and each rule get numeric ids."""
        row = IntegrationEventRow(
            id=f"INTG-EVENT-{uuid.uuid4()}",
            tenant_id=tenant_id,
            installed_id=installed_id,
            active=True,
        )
        self._write(row, spec)
        with self.session() as s:
            s.add(row)
            bump_config_version(s)
            s.flush()
            return self._event_of(s, row)

    def update_event(
        self, tenant_id: str, event_id: str, spec: IntegrationEventIn
    ) -> StoredEvent | None:
        """Replace an event with ``spec``, keeping the stored value of every secret it omits
        (a notifier secret left out, a header sent back as ``***``); ``None`` if unknown.

        Its ``updated_at`` moves, so every worker compiles the new version at its next batch.
        """
        with self.session() as s:
            row = owned(s, IntegrationEventRow, event_id, tenant_id)
            if row is None:
                return None
            merged = keep_omitted_secrets(spec, self._event_of(s, row).spec)
            # The old criteria go first: the new ones take the same unique event_id.
            row.criteria = None
            s.flush()
            self._write(row, merged)
            row.updated_at = utcnow()
            bump_config_version(s)
            s.flush()
            return self._event_of(s, row)

    def get_event(self, tenant_id: str, event_id: str) -> StoredEvent | None:
        """The tenant's integration event, or ``None``."""
        with self.session() as s:
            row = owned(s, IntegrationEventRow, event_id, tenant_id)
            return self._event_of(s, row) if row is not None else None

    def load_event(self, event_id: str) -> StoredEvent | None:
        """An integration event by id, whatever its tenant (for the worker)."""
        with self.session() as s:
            row = s.get(IntegrationEventRow, event_id)
            return self._event_of(s, row) if row is not None else None

    def load_events(self, ids: Collection[str]) -> dict[str, StoredEvent]:
        """The integration events among ``ids`` that exist, whatever their tenant, by id.

        A fixed number of queries however many: the events, their criteria, their rules and
        their installed integrations' base notifiers are each read in one ``IN`` (per 500).
        """
        rows: list[IntegrationEventRow] = []
        with self.session() as s:
            for chunk in chunks(sorted(set(ids))):
                rows.extend(
                    s.scalars(
                        select(IntegrationEventRow)
                        .where(IntegrationEventRow.id.in_(chunk))
                        .options(
                            selectinload(IntegrationEventRow.criteria).selectinload(
                                FilterCriteriaRow.rules
                            )
                        )
                    )
                )
            parents = self._parents(s, {r.installed_id for r in rows})
            return {
                r.id: self._event(r, parents.get(r.installed_id, (None, InstalledState.ENABLED)))
                for r in rows
            }

    def list_events(self, tenant_id: str, installed_id: str) -> list[StoredEvent]:
        """The integration events under one installed integration, oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(IntegrationEventRow)
                .where(
                    IntegrationEventRow.tenant_id == tenant_id,
                    IntegrationEventRow.installed_id == installed_id,
                )
                .order_by(IntegrationEventRow.created_at)
            ).all()
            parent = self._parents(s, [installed_id]).get(installed_id)
            return [self._event(r, *([parent] if parent else [])) for r in rows]

    def captured_names(
        self, tenant_id: str, installed_id: str, besides: str | None = None
    ) -> set[str]:
        """The names the installed integration's events capture from responses, but
        ``besides``'s (an update states its own): what its templates may read besides the
        entity."""
        return {
            h.key
            for e in self.list_events(tenant_id, installed_id)
            if e.id != besides
            for h in e.spec.responseHeaders
        }

    def delete_event(self, tenant_id: str, event_id: str) -> bool:
        """Delete an integration event; ``False`` if there was none."""
        with self.session() as s:
            row = owned(s, IntegrationEventRow, event_id, tenant_id)
            if row is None:
                return False
            s.delete(row)
            bump_config_version(s)
            return True

    def set_event_active(
        self, event_id: str, active: bool, reason: str | None = None
    ) -> StoredEvent | None:
        """Activate or deactivate an event; ``reason`` says why Herald disabled it."""
        with self.session() as s:
            row = s.get(IntegrationEventRow, event_id)
            if row is None:
                return None
            row.active = active
            row.disabled_reason = None if active else reason
            bump_config_version(s)
            s.flush()
            return self._event_of(s, row)

    def candidate_keys(
        self, tenant_id: str, entity: Entity, event_type: EventType
    ) -> list[tuple[str, datetime]]:
        """``(id, updated_at)`` of the active events a change may match (served by an index):
        those of enabled installed integrations only.

        The worker keeps compiled events by these keys, so matching a change costs one
        indexed query, not a decryption and validation of every candidate.
        """
        with self.session() as s:
            rows = s.execute(
                select(IntegrationEventRow.id, IntegrationEventRow.updated_at)
                .join(
                    InstalledIntegrationRow,
                    InstalledIntegrationRow.id == IntegrationEventRow.installed_id,
                )
                .where(
                    IntegrationEventRow.tenant_id == tenant_id,
                    IntegrationEventRow.entity == entity.value,
                    IntegrationEventRow.event_type == event_type.value,
                    IntegrationEventRow.active.is_(True),
                    InstalledIntegrationRow.state == str(InstalledState.ENABLED),
                )
            ).all()
            return [(r[0], r[1]) for r in rows]
