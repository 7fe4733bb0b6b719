"""Safe XML parsing for responses, and XML as plain data for response capture.

Third-party XML is parsed with defusedxml: an endpoint must not be able to make Herald expand
entities or fetch external DTDs.

:func:`to_data` turns a document into nested dicts, lists and strings so the dotted paths of
``responseHeaders`` (:mod:`notifiers.capture`) reach into XML and SOAP answers as they reach
into JSON:

* elements are keyed by local name (namespace prefixes and URIs dropped), the document's root
  element included: ``<ticket><id>7</id></ticket>`` is ``{"ticket": {"id": "7"}}``;
* an element with neither children nor attributes is its stripped text;
* repeated children become a list, indexed as in JSON: ``$items.item.1.id``;
* attributes are ``@name`` keys, and the text of an element that also has children or
  attributes is ``#text``;
* a SOAP envelope's ``Body`` children are also keys of the top level, so
  ``$insertResponse.sys_id`` reaches what ``$Envelope.Body.insertResponse.sys_id`` does.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET


def local_name(tag: str) -> str:
    """``{urn:x}Body`` and ``soap:Body`` -> ``Body``."""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag.rsplit(":", 1)[-1]


def parse(xml: bytes | str) -> Element | None:
    """The root element of ``xml``, or ``None`` when it is not well-formed (or is unsafe)."""
    try:
        root: Element = SafeET.fromstring(xml)
    except (ParseError, defusedxml.DefusedXmlException, ValueError):
        return None
    return root


def child(parent: Element, name: str) -> Element | None:
    """The first child of ``parent`` with local name ``name``."""
    for elem in parent:
        if local_name(elem.tag) == name:
            return elem
    return None


#: Deepest nesting :func:`to_data` follows. Real answers nest a handful of levels; a hostile
#: one nested thousands deep (a few KB) must not exhaust the stack of a delivery that has
#: already succeeded.
MAX_DEPTH = 64


class _TooDeep(Exception):
    pass


def element_data(elem: Element, depth: int = 0) -> Any:
    """One element as data (see the module docstring): text, or a dict."""
    if depth > MAX_DEPTH:
        raise _TooDeep
    attributes = {f"@{local_name(k)}": v for k, v in elem.attrib.items()}
    text = (elem.text or "").strip()
    if len(elem) == 0 and not attributes:
        return text
    node: dict[str, Any] = attributes
    repeated: set[str] = set()
    for sub in elem:
        key, value = local_name(sub.tag), element_data(sub, depth + 1)
        if key not in node:
            node[key] = value
        elif key in repeated:
            node[key].append(value)
        else:
            node[key] = [node[key], value]
            repeated.add(key)
    if text:
        node["#text"] = text
    return node


def to_data(body: bytes | str) -> dict[str, Any] | None:
    """An XML document as data, or ``None`` when ``body`` is not XML (or is unsafe, or
    nested deeper than :data:`MAX_DEPTH`)."""
    if body.lstrip()[:1] not in (b"<", "<"):
        return None
    root = parse(body)
    if root is None:
        return None
    try:
        whole = element_data(root)
    except _TooDeep:
        return None
    name = local_name(root.tag)
    data: dict[str, Any] = {}
    if name == "Envelope" and isinstance(whole, dict):
        # The Body's data is already in the envelope's: hoist its children (the first Body's,
        # should a malformed envelope repeat it).
        soap_body = whole.get("Body")
        if isinstance(soap_body, list):
            soap_body = soap_body[0]
        if isinstance(soap_body, dict):
            data.update(soap_body)
    # The root's own key is set last: it wins over a Body child of the same name.
    data[name] = whole
    return data
