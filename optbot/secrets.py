"""Where broker secrets come from: the environment or the OS keyring, never the config file.

The four login credentials are looked up as ``OPTBOT_<NAME>`` first, then in the keyring
under service ``optbot`` with the credential name as the user name (``keyring set optbot pin``).
Values travel as ``pydantic.SecretStr`` so a repr, a log line or an exception shows only stars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

KEYRING_SERVICE = "optbot"

CREDENTIAL_NAMES: tuple[str, ...] = ("client_code", "pin", "totp_secret", "api_key")

# Session tokens are minted at login; they are never configured, only refused.
_TOKEN_KEYS = frozenset(
    {"jwt", "jwt_token", "jwttoken", "token", "refresh_token", "refreshtoken", "feed_token"}
    | {"feedtoken", "auth_token", "access_token"}
)
# The SmartAPI wire spellings of the credentials, mapped to our names.
_CREDENTIAL_ALIASES = {
    "clientcode": "client_code",
    "password": "pin",
    "totp": "totp_secret",
    "apikey": "api_key",
    "api_secret": "api_key",
    "private_key": "api_key",
}


def credential_env_var(name: str) -> str:
    """The environment variable that holds a credential, e.g. ``pin`` → ``OPTBOT_PIN``."""
    return f"OPTBOT_{name.upper()}"


def is_secret_key(key: str) -> bool:
    """True when a configuration key names a secret that must not live in a file."""
    normal = key.strip().lower().replace("-", "_")
    return normal in CREDENTIAL_NAMES or normal in _CREDENTIAL_ALIASES or normal in _TOKEN_KEYS


def how_to_move_secret(key: str, found_in: str = "the config file") -> str:
    """Advice for a secret key found where it does not belong; never mentions its value."""
    normal = key.strip().lower().replace("-", "_")
    remove = "delete this key" if found_in == "the config file" else f"unset {found_in}"
    if normal in _TOKEN_KEYS:
        return (
            f"secrets are not read from {found_in}; session tokens are created at login "
            f"and are never configured — {remove}"
        )
    name = _CREDENTIAL_ALIASES.get(normal, normal)
    return (
        f"secrets are not read from {found_in}; {remove} and set "
        f"{credential_env_var(name)} or run `keyring set {KEYRING_SERVICE} {name}`"
    )


@dataclass(frozen=True, slots=True)
class SecretLookup:
    """The outcome of looking up one credential; ``origin`` says where it was found."""

    name: str
    value: SecretStr | None
    origin: str  # "OPTBOT_PIN", "keyring", or "" when not found
    keyring_problem: str | None = None  # why the keyring could not be asked, if it could not


def read_keyring(name: str) -> tuple[str | None, str | None]:
    """Ask the OS keyring for a credential: ``(value, problem)``; a broken keyring is no crash."""
    import keyring  # imported here: backend discovery is slow and most runs never need it

    try:
        value = keyring.get_password(KEYRING_SERVICE, name)
    # Backends raise their own error types (NoKeyringError, D-Bus, Secret Service, locked
    # store …); for us every one of them means "not found here".
    except Exception as exc:
        return None, type(exc).__name__
    return (value if value else None), None


def lookup_credential(name: str, env: Mapping[str, str]) -> SecretLookup:
    """Find one credential in the environment, else the keyring."""
    env_var = credential_env_var(name)
    from_env = env.get(env_var, "").strip()
    if from_env:
        return SecretLookup(name, SecretStr(from_env), env_var)
    value, problem = read_keyring(name)
    if value is not None and value.strip():
        return SecretLookup(name, SecretStr(value.strip()), "keyring")
    return SecretLookup(name, None, "", problem)
