"""A simulator that remembers every signed-URL signature it hands out, for secrets tests."""

from __future__ import annotations

from aps_mirror.simulator import Simulator


class SigningSimulator(Simulator):
    """The simulator, remembering every signed-URL signature it hands out."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.signatures: set[str] = set()

    def sign_download(self, *args, **kwargs) -> tuple[int, str]:
        expires, signature = super().sign_download(*args, **kwargs)
        self.signatures.add(signature)
        return expires, signature
