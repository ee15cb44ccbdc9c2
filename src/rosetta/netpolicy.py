"""Where Rosetta may open connections: one allow-list for sources, one for webhooks.

A policy is a comma-separated list (``ROSETTA_SOURCE_NETWORKS``, ``ROSETTA_WEBHOOK_NETWORKS``) of
- ``*``: any IP address except link-local ones (``169.254.0.0/16``, ``fe80::/10``, where cloud
  metadata services answer) and unspecified ones (``0.0.0.0``, ``::``);
- CIDR networks and single addresses (``10.0.0.0/8``, ``2001:db8::/32``, ``127.0.0.1``);
- host names (``db.example.com``), allowed whatever they resolve to;
- ``local``: Unix-domain sockets (a host that is a directory path), for sources only.

A host name that is not listed is resolved, and every address it resolves to must be allowed; the
connection is then made to the address that was checked (``hostaddr`` for libpq), so a second
lookup cannot point it elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from dataclasses import dataclass

from rosetta.errors import ConfigurationError, InvalidInputError, NetworkNotAllowedError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ANY = "*"
LOCAL = "local"
# Never reached through "*": link-local (cloud metadata) and unspecified addresses.
_EXCLUDED_FROM_ANY: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("0.0.0.0/32"),
    ipaddress.ip_network("::/128"),
)
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$"
)
MAX_SOCKET_PATH = 107


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address (IPv6 with or without brackets), or None for a host name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_socket_path(host: str) -> bool:
    return host.startswith("/")


def validate_host(host: str, what: str = "host") -> str:
    """One host: a name, an IP address or (sources) a socket directory. libpq would read a
    comma as a list of hosts, so one is refused, as are spaces and control characters."""
    if is_socket_path(host):
        if (
            len(host) > MAX_SOCKET_PATH
            or "," in host
            or any(not ch.isprintable() or ch.isspace() for ch in host)
        ):
            raise InvalidInputError(f"invalid {what}: give one socket directory path")
        return host
    if parse_ip(host) is None and not _HOSTNAME_RE.match(host):
        raise InvalidInputError(
            f"invalid {what} {_shown(host)}: give one host name or IP address (no commas, "
            "spaces or ports)"
        )
    return host


def _shown(text: str) -> str:
    """``text`` quoted for an error line, cut short and with control characters escaped."""
    return repr(text[:80])


@dataclass(frozen=True)
class NetworkPolicy:
    setting: str
    any_address: bool
    networks: tuple[IPNetwork, ...]
    hosts: frozenset[str]
    local_sockets: bool

    @classmethod
    def parse(cls, text: str, setting: str) -> NetworkPolicy:
        """The policy a setting spells; a bad entry is a configuration error naming it."""
        any_address = local = False
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in text.split(","):
            entry = raw.strip()
            if not entry:
                continue
            if entry == ANY:
                any_address = True
            elif entry.lower() == LOCAL:
                local = True
            elif "/" in entry or parse_ip(entry) is not None:
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    raise ConfigurationError(
                        f"invalid {setting} entry {entry!r}: use a CIDR network such as "
                        "10.0.0.0/8, an address, a host name, '*' or 'local'"
                    ) from None
            elif _HOSTNAME_RE.match(entry):
                hosts.add(entry.lower().rstrip("."))
            else:
                raise ConfigurationError(
                    f"invalid {setting} entry {entry!r}: use a CIDR network such as "
                    "10.0.0.0/8, an address, a host name, '*' or 'local'"
                )
        return cls(setting, any_address, tuple(networks), frozenset(hosts), local)

    def allows_address(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return True
        return self.any_address and not any(address in net for net in _EXCLUDED_FROM_ANY)

    def _refuse(self, host: str, why: str, entry: str | None = None) -> NetworkNotAllowedError:
        return NetworkNotAllowedError(
            f"{_shown(host)} {why}, which {self.setting} does not allow: add "
            f"{entry or 'it'} to {self.setting} to allow it"
        )

    def check_host(self, host: str) -> None:
        """Refuse what can be refused without a lookup: a socket, a listed or literal address."""
        validate_host(host)
        if is_socket_path(host):
            if not self.local_sockets:
                raise self._refuse(host, "is a Unix-domain socket", "'local'")
            return
        ip = parse_ip(host)
        if ip is not None and not self.allows_address(ip):
            raise self._refuse(host, "is an address")

    def resolve(self, host: str, port: int, timeout: float | None = None) -> str | None:
        """The address to connect to for ``host``: checked against the policy, so the caller
        connects there and nowhere else. None for a socket path or a host name the policy
        lists by name (connect to the name). Raises NetworkNotAllowedError, InvalidInputError
        when the name does not resolve, or TimeoutError when the lookup takes over
        ``timeout`` seconds."""
        self.check_host(host)
        if is_socket_path(host):
            return None
        ip = parse_ip(host)
        if ip is not None:
            return str(ip)
        if host.lower().rstrip(".") in self.hosts:
            return None
        try:
            addresses = _lookup(host, port, timeout)
        except (OSError, UnicodeError):
            raise InvalidInputError(
                f"cannot resolve the host name {_shown(host)}: check the name"
            ) from None
        for text in addresses:
            found = parse_ip(text.split("%", 1)[0])
            if found is None or not self.allows_address(found):
                raise self._refuse(host, f"resolves to {text}")
        if not addresses:
            raise InvalidInputError(f"cannot resolve the host name {_shown(host)}: check the name")
        return addresses[0]


def _lookup(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses ``host`` resolves to. With ``timeout``, the lookup runs in a thread of its
    own, so that a slow resolver cannot hold the caller longer (TimeoutError)."""

    def addresses() -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    if timeout is None:
        return addresses()
    found: list[list[str]] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            found.append(addresses())
        except BaseException as exc:  # handed to the caller
            failed.append(exc)

    thread = threading.Thread(target=run, name="rosetta-name-lookup", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout))
    if failed:
        raise failed[0]
    if not found:
        raise TimeoutError(f"looking up {_shown(host)} took over {timeout:g} s")
    return found[0]


def for_sources(networks: str) -> NetworkPolicy:
    """The policy of ``ROSETTA_SOURCE_NETWORKS``."""
    return NetworkPolicy.parse(networks, "ROSETTA_SOURCE_NETWORKS")


def for_webhooks(networks: str) -> NetworkPolicy:
    """The policy of ``ROSETTA_WEBHOOK_NETWORKS`` (Unix-domain sockets never apply)."""
    policy = NetworkPolicy.parse(networks, "ROSETTA_WEBHOOK_NETWORKS")
    return NetworkPolicy(policy.setting, policy.any_address, policy.networks, policy.hosts, False)
