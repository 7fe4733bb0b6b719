"""Paging as OpsRamp pages: ``results``, ``totalResults``, ``pageNo``, ``pageSize``,
``totalPages``, ``nextPage`` and ``descendingOrder``, with bounds checked.

A ``pageNo`` of 2^63 reached the database as an offset it cannot hold (a 500); the bounds
make it a 400 naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

#: The highest page number and page size a request may ask for.
MAX_PAGE_NO = 1_000_000
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    """Which page a request asks for."""

    no: int
    size: int
    #: ``isDescendingOrder`` as asked; ``None``: the resource's natural order.
    descending: bool | None

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.no - 1) * self.size

    def descending_or(self, natural: bool) -> bool:
        """Whether this page runs newest first, given the resource's natural order."""
        return natural if self.descending is None else self.descending

    def body(self, results: Sequence[Any], total: int, descending: bool) -> dict[str, Any]:
        """The paged answer around ``results`` (this page's rows) of ``total``."""
        pages = max(1, math.ceil(total / self.size))
        return {
            "results": list(results),
            "totalResults": total,
            "pageNo": self.no,
            "pageSize": self.size,
            "totalPages": pages,
            "nextPage": self.no < pages,
            "descendingOrder": descending,
        }


def page(
    pageNo: Annotated[int, Query(ge=1, le=MAX_PAGE_NO)] = 1,
    pageSize: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    isDescendingOrder: Annotated[bool | None, Query()] = None,
) -> Page:
    """The page a request asks for (a ``Depends``)."""
    return Page(pageNo, pageSize, isDescendingOrder)


PageDep = Annotated[Page, Depends(page)]
