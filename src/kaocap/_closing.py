"""One context-manager base for everything kaocap opens and must close."""

from __future__ import annotations

from typing import Self


class Closing:
    """``with obj: ...`` calls ``obj.close()`` on the way out; subclasses implement ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
