"""Settings of the ``nazar`` command line."""

from __future__ import annotations

from pydantic import Field, SecretStr

from nazar_common.settings import CommonSettings


class CliSettings(CommonSettings):
    api_url: str = Field(
        default="http://127.0.0.1:8080", description="API base URL for commands that call it."
    )
    api_key: SecretStr = Field(
        default=SecretStr(""), description="API key for commands that call the API."
    )
