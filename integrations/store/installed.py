"""Installed integrations: install, read, search, update, enable, disable, uninstall.

An installed integration is never deleted: uninstalling it stops its events from matching
and keeps it, its events and its activity history readable. Every write that changes what
matching or delivery sees bumps the configuration version in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, update

from integrations.models import Notifier
from integrations.store.engine import StoreBase, bump_config_version, owned
from integrations.store.records import InstalledIntegration, InstalledState, split_secrets
from integrations.tables import InstalledIntegrationRow, IntegrationEventRow, utcnow

#: ``sortName`` values of the search, and the column each sorts by.
SORTS = {
    "displayName": InstalledIntegrationRow.display_name,
    "createdTime": InstalledIntegrationRow.created_at,
    "updatedTime": InstalledIntegrationRow.updated_at,
    "state": InstalledIntegrationRow.state,
    "intgId": InstalledIntegrationRow.intg_id,
}


class InstalledStore(StoreBase):
    """Installed integrations: the parents of integration events."""

    def _open_notifier(self, public: str | None, sealed: str | None) -> Notifier | None:
        if not public:
            return None
        data = json.loads(public)
        data.update(self._box.open(sealed))
        return Notifier.model_validate(data)

    def _installed(self, row: InstalledIntegrationRow) -> InstalledIntegration:
        return InstalledIntegration(
            id=row.id,
            tenant_id=row.tenant_id,
            intg_id=row.intg_id,
            display_name=row.display_name,
            base_notifier=self._open_notifier(row.base_notifier, row.base_notifier_secrets),
            created_at=row.created_at,
            state=InstalledState(row.state or InstalledState.ENABLED),
            state_reason=row.state_reason,
            extra=json.loads(row.extra) if row.extra else None,
            updated_at=row.updated_at,
        )

    def install(
        self,
        tenant_id: str,
        intg_id: str,
        display_name: str,
        extra: Mapping[str, Any] | None = None,
    ) -> InstalledIntegration:
        """Install an integration for a tenant; its id is ``INTG-<uuid>``. ``extra``: the
        fields of the request Herald keeps without using."""
        row = InstalledIntegrationRow(
            id=f"INTG-{uuid.uuid4()}",
            tenant_id=tenant_id,
            intg_id=intg_id,
            display_name=display_name,
            state=str(InstalledState.ENABLED),
            extra=json.dumps(dict(extra)) if extra else None,
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            return self._installed(row)

    def get_installed(self, tenant_id: str, installed_id: str) -> InstalledIntegration | None:
        """The tenant's installed integration, or ``None`` if unknown or another tenant's."""
        with self.session() as s:
            row = owned(s, InstalledIntegrationRow, installed_id, tenant_id)
            return self._installed(row) if row is not None else None

    def set_base_notifier(
        self, tenant_id: str, installed_id: str, notifier: Notifier
    ) -> InstalledIntegration | None:
        """Store the installed integration's base notifier (secrets sealed)."""
        public, hidden = split_secrets(notifier)
        with self.session() as s:
            row = owned(s, InstalledIntegrationRow, installed_id, tenant_id)
            if row is None:
                return None
            row.base_notifier = json.dumps(public)
            row.base_notifier_secrets = self._box.seal(hidden)
            # Events that use the base notifier changed too: bump them so caches refresh.
            s.execute(
                update(IntegrationEventRow)
                .where(IntegrationEventRow.installed_id == installed_id)
                .values(updated_at=utcnow())
            )
            bump_config_version(s)
            s.flush()
            return self._installed(row)

    def update_installed(
        self,
        tenant_id: str,
        installed_id: str,
        *,
        display_name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> InstalledIntegration | None:
        """Rename an installed integration and merge ``extra`` into what it keeps."""
        with self.session() as s:
            row = owned(s, InstalledIntegrationRow, installed_id, tenant_id)
            if row is None:
                return None
            if display_name is not None:
                row.display_name = display_name
            if extra:
                kept = json.loads(row.extra) if row.extra else {}
                kept.update(extra)
                row.extra = json.dumps(kept)
            row.updated_at = utcnow()
            s.flush()
            return self._installed(row)

    def set_installed_state(
        self, tenant_id: str, installed_id: str, state: InstalledState, reason: str | None = None
    ) -> InstalledIntegration | None:
        """Enable, disable or uninstall; ``reason`` is kept for an uninstall."""
        with self.session() as s:
            row = owned(s, InstalledIntegrationRow, installed_id, tenant_id)
            if row is None:
                return None
            row.state = str(state)
            row.state_reason = reason if state is InstalledState.UNINSTALLED else None
            row.updated_at = utcnow()
            bump_config_version(s)
            s.flush()
            return self._installed(row)

    def search_installed(
        self,
        tenant_id: str,
        *,
        filters: Sequence[tuple[str, str]] = (),
        sort: str = "createdTime",
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[InstalledIntegration], int]:
        """A page of the tenant's installed integrations and how many match.

        ``filters``: ``(field, value)`` pairs, all of which must hold: ``displayName``
        (contains, any case), ``intgId``, ``state`` or ``id`` (equal). Uninstalled ones are
        left out unless ``state`` asks for them.
        """
        t = InstalledIntegrationRow
        conds = [t.tenant_id == tenant_id]
        if not any(name == "state" for name, _ in filters):
            conds.append(t.state != str(InstalledState.UNINSTALLED))
        for name, value in filters:
            if name == "displayName":
                conds.append(func.lower(t.display_name).contains(value.lower(), autoescape=True))
            elif name == "intgId":
                conds.append(t.intg_id == value)
            elif name == "state":
                conds.append(t.state == value.upper())
            elif name == "id":
                conds.append(t.id == value)
            else:
                raise ValueError(name)
        column = SORTS[sort]
        order = (column.desc() if descending else column.asc(), t.id)
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(t).where(*conds)) or 0
            rows = s.scalars(select(t).where(*conds).order_by(*order).offset(offset).limit(limit))
            return [self._installed(r) for r in rows], int(total)
