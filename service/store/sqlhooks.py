"""The hooks a table mixin of the SQL stores calls, implemented by ``SqlStoreBase``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.store.blocks import RecordBlock


class SqlHooks:
    """Declares what :class:`service.store.sqlbase.SqlStoreBase` provides to its mixins."""

    def _write(self) -> AbstractContextManager[Any]:  # pragma: no cover - backend hook
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:  # pragma: no cover - backend hook
        raise NotImplementedError

    def _select(self, cur: Any, sql: str, params: Any = ()) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    def _json(self, value: Any) -> Any:  # pragma: no cover - backend hook
        raise NotImplementedError

    def _lock_rows(self, skip_locked: bool = False) -> str:  # pragma: no cover
        raise NotImplementedError

    def _q(self, sql: str) -> str:  # pragma: no cover - backend hook
        raise NotImplementedError

    def _block(self, row: Any) -> RecordBlock:  # pragma: no cover - implemented by the base
        raise NotImplementedError

    def _attach_labels(self, cur: Any, blocks: list[RecordBlock]) -> None:  # pragma: no cover
        raise NotImplementedError
