"""Names, error types and HTTP statuses of the sidecar's ``/run-command`` protocol.

Every other module of the emulator takes its command names and error types from here, so that
a wire name is spelled once. The error types follow the ``propelauth-byo`` 1.0.12 SDK: each
command's parser in that SDK accepts only the types listed for it, and raises ``ValueError``
on any other, so a handler may raise only the types its command declares.

The real sidecar's HTTP status codes are not documented, and the SDK only distinguishes 200
from other statuses. The statuses below are the emulator's choice, and clients must branch on
the body's ``type``.
"""

from __future__ import annotations

from typing import Any, Final

PING: Final = "Ping"
CREATE_OIDC_CLIENT: Final = "CreateOidcClient"
FETCH_OIDC_CLIENT: Final = "FetchOidcClient"
PATCH_OIDC_CLIENT: Final = "PatchOidcClient"
DELETE_OIDC_CLIENT: Final = "DeleteOidcClient"
INITIATE_OIDC_LOGIN: Final = "InitiateOidcLogin"

IMPLEMENTED_COMMANDS: Final = frozenset(
    {
        PING,
        CREATE_OIDC_CLIENT,
        FETCH_OIDC_CLIENT,
        PATCH_OIDC_CLIENT,
        DELETE_OIDC_CLIENT,
        INITIATE_OIDC_LOGIN,
    }
)

# Integration-key errors, checked before any command runs.
NO_INTEGRATION_KEY_FOUND_IN_HEADER: Final = "NoIntegrationKeyFoundInHeader"
INVALID_PREFIX: Final = "InvalidPrefix"
INTEGRATION_KEY_NOT_FOUND: Final = "IntegrationKeyNotFound"
COMMAND_NOT_ALLOWED: Final = "CommandNotAllowed"

# Command errors.
INVALID_FIELDS: Final = "InvalidFields"
CLIENT_ID_ALREADY_TAKEN: Final = "ClientIdAlreadyTaken"
CUSTOMER_ID_ALREADY_TAKEN: Final = "CustomerIdAlreadyTakenForEoidcClient"
OIDC_CLIENT_NOT_FOUND: Final = "OidcClientNotFound"
CLIENT_NOT_FOUND: Final = "ClientNotFound"
REDIRECT_URL_INVALID: Final = "RedirectUrlInvalid"
OIDC_REDIRECT_URL_NOT_REGISTERED: Final = "OidcRedirectUrlNotRegistered"
UNEXPECTED_ERROR: Final = "UnexpectedError"

ERROR_STATUS: Final[dict[str, int]] = {
    NO_INTEGRATION_KEY_FOUND_IN_HEADER: 401,
    INVALID_PREFIX: 401,
    INTEGRATION_KEY_NOT_FOUND: 401,
    COMMAND_NOT_ALLOWED: 403,
    INVALID_FIELDS: 400,
    CLIENT_ID_ALREADY_TAKEN: 409,
    CUSTOMER_ID_ALREADY_TAKEN: 409,
    OIDC_CLIENT_NOT_FOUND: 404,
    CLIENT_NOT_FOUND: 404,
    REDIRECT_URL_INVALID: 400,
    OIDC_REDIRECT_URL_NOT_REGISTERED: 400,
    UNEXPECTED_ERROR: 500,
}

# Initial setup errors. No public document names them, so these names are the emulator's own.
INVALID_SETUP_SECRET: Final = "InvalidSetupSecret"
INITIAL_SETUP_ALREADY_DONE: Final = "InitialSetupAlreadyDone"
INITIAL_SETUP_NOT_ENABLED: Final = "InitialSetupNotEnabled"
INVALID_REQUEST: Final = "InvalidRequest"


class CommandError(Exception):
    """A command failed with an error type of the protocol.

    The server turns it into ``{"type": ..., "details": ...}`` with ``status``. ``details`` is
    omitted from the body when it is None, as the sidecar does for detail-less types. Messages
    and details never contain a secret, because they reach logs and clients.
    """

    def __init__(self, error_type: str, details: Any = None, *, status: int | None = None):
        super().__init__(error_type)
        self.error_type = error_type
        self.details = details
        self.status = status if status is not None else ERROR_STATUS.get(error_type, 500)

    def to_body(self) -> dict[str, Any]:
        """Build the JSON error body."""
        body: dict[str, Any] = {"type": self.error_type}
        if self.details is not None:
            body["details"] = self.details
        return body


def invalid_request(message: str) -> CommandError:
    """Build the error for a body the emulator cannot read as a command.

    ``UnexpectedError`` is the one type that every command's SDK parser accepts, so a malformed
    request never makes the SDK raise. The status is 400 because the client is at fault.
    """
    return CommandError(UNEXPECTED_ERROR, message, status=400)
