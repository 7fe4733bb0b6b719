"""Notifier layer: turns a rendered integration event into an HTTP(S) request and its outcome.

Modules, each owning one concern: :mod:`~notifiers.urls` (baseURI + endPointURI),
:mod:`~notifiers.safety` (SSRF guard), :mod:`~notifiers.auth` (NONE/BASIC/OAUTH2/JWT),
:mod:`~notifiers.signing` (Standard Webhooks), :mod:`~notifiers.soap`,
:mod:`~notifiers.outcome` (success/retry/give up), :mod:`~notifiers.capture` (response
capture), :mod:`~notifiers.request` and :mod:`~notifiers.response` (building a request,
reading its answer: shared by the sync and async paths), :mod:`~notifiers.aio` (the guarded aiohttp
transport for overlapped sends) and :mod:`~notifiers.sender` (the entry point the worker
calls: ``Sender.send`` and ``Sender.send_async``).
"""

from notifiers.sender import DeliveryResponse, OutboundRequest, Sender
from notifiers.urls import resolve_url

__all__ = ["DeliveryResponse", "OutboundRequest", "Sender", "resolve_url"]
