"""The helm binary set-up installs, for the suite's tests that call it directly, and the
mark that skips them where it is missing."""

import pytest

from shipcheck import tools


def _helm_or_none() -> str | None:
    try:
        return tools.binary("helm")
    except tools.ToolNotFound:
        return None


HELM = _helm_or_none()
needs_helm = pytest.mark.skipif(HELM is None, reason="helm not installed (bash setup/tools.sh)")
