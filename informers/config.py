"""Client configuration: where the apiserver is, how to authenticate, and how hard to push it.

``ClientConfig`` is a frozen record of everything ``ApiClient`` needs; ``load_config`` fills it from
a kubeconfig (contexts, exec and auth-provider plugins, client certificates, CA) or from the pod's
service account, through the ``kubernetes`` package's loaders into a ``kubernetes.client.Configuration``
whose fields are then copied out. Only this module imports ``kubernetes``; the generated API and
model classes are never used.
Invariant: a ``ClientConfig`` that exists is valid (its ``__post_init__`` rejects bad options with
``ConfigError``), and credentials that rotate (exec plugins, in-cluster tokens) are re-read through
``authorization_header()`` on every request, never cached here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = ["ClientConfig", "from_kube_configuration", "load_config"]

_SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
_DEFAULT_KUBECONFIG = os.path.join("~", ".kube", "config")


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Connection, credentials and client-side limits for one apiserver.

    Build it with ``load_config`` (the usual way) or directly; tune a loaded one with
    ``dataclasses.replace(config, qps=50.0)``.
    """

    host: str
    """Base URL of the apiserver, e.g. ``https://127.0.0.1:6443``; a path prefix is kept. Required."""

    verify_ssl: bool = True
    """Verify the server certificate. Default True; turn off only for throwaway clusters."""

    ca_file: str | None = None
    """PEM file of the CA that signed the server certificate. Default None: the system CAs."""

    ca_data: str | None = None
    """PEM text of that CA, as an alternative to ``ca_file``. Default None."""

    cert_file: str | None = None
    """PEM client certificate for mutual TLS. Default None (no client certificate)."""

    key_file: str | None = None
    """PEM private key of ``cert_file``. Default None."""

    tls_server_name: str | None = None
    """Server name for SNI and certificate checks when it differs from the host. Default None."""

    token: str | None = field(default=None, repr=False)
    """A static bearer token (without the ``Bearer`` prefix). Default None. Never shown in repr."""

    authorization: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)
    """Returns the full ``Authorization`` header value; called before every request so rotating
    credentials (exec plugins, projected service-account tokens) stay fresh. Overrides ``token``.
    Default None. Must be thread-safe; ``load_config`` provides a locked one."""

    proxy: str | None = None
    """HTTP(S) or SOCKS proxy URL. Default None (``load_config`` takes the environment's)."""

    proxy_headers: Mapping[str, str] | None = None
    """Extra headers sent to the proxy. Default None."""

    no_proxy: str | None = None
    """Comma-separated hosts, domains or CIDRs that bypass the proxy (``*`` for all). Default None."""

    qps: float = 5.0
    """Sustained requests per second the client sends (client-go's QPS). Default 5.0. A negative
    value disables client-side throttling; 0 is rejected (client-go would silently use 5)."""

    burst: int = 10
    """Requests that may be sent at once before ``qps`` applies (client-go's Burst). Default 10."""

    connect_timeout: float = 10.0
    """Seconds to establish TCP+TLS to the apiserver, on every request and watch. Default 10.0."""

    read_timeout: float = 60.0
    """Seconds to wait for the next bytes of a non-watch answer (per read, not in total).
    Default 60.0; raise it for very large unpaginated lists. Watches use their idle deadline."""

    max_retries: int = 10
    """The retry budget of one ``ApiClient`` call: the most times it repeats its request, whatever
    the cause (client-go's maxRetries), so a call sends at most ``1 + max_retries`` requests.
    Repeated: answers 429 or 5xx *with* a numeric ``Retry-After`` (answers without one are raised
    at once), and connection failures (see ``connection_retries``). Default 10; 0 disables all
    retries. ``ApiWriter`` calls use ``WriterOptions.retries`` instead."""

    connection_retries: int = 3
    """Of those repeats, at most this many for a GET (list, get, watch open) whose connection
    failed or was dropped before an answer. Writes are never retried this way (they may have been
    applied). Default 3; capped by ``max_retries``."""

    connection_retry_delay: float = 1.0
    """Seconds to wait before each connection retry (client-go waits 1 s). Default 1.0."""

    pool_maxsize: int = 25
    """Idle connections kept per host for reuse (client-go keeps 25). More than this may be open
    at once (watches hold one each); extras are closed after use. Default 25."""

    user_agent: str = "informerd/0.1.0"
    """``User-Agent`` sent with every request; shows up in apiserver audit logs. Default
    ``informerd/0.1.0``."""

    def __post_init__(self) -> None:
        if not self.host or "://" not in self.host:
            raise ConfigError(f"host must be a URL such as https://127.0.0.1:6443, got {self.host!r}")
        if self.qps == 0 or self.qps != self.qps:
            raise ConfigError("qps must be positive, or negative to disable client-side throttling")
        if self.burst < 1:
            raise ConfigError(f"burst must be at least 1, got {self.burst}")
        for name in ("connect_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        for name in ("max_retries", "connection_retries"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.connection_retry_delay < 0:
            raise ConfigError("connection_retry_delay must not be negative")
        if self.pool_maxsize < 1:
            raise ConfigError(f"pool_maxsize must be at least 1, got {self.pool_maxsize}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("cert_file and key_file must be given together")

    @property
    def throttled(self) -> bool:
        """Whether client-side QPS/Burst throttling applies (``qps`` is positive)."""
        return self.qps > 0

    def authorization_header(self) -> str | None:
        """The ``Authorization`` header value for the next request, or None for none."""
        if self.authorization is not None:
            return self.authorization()
        if self.token:
            return f"Bearer {self.token}"
        return None


def _authorization_from(kube_configuration: Any) -> Callable[[], str | None] | None:
    """Wrap the Configuration's (possibly refreshing) API key in a thread-safe callable."""
    if not kube_configuration.api_key and kube_configuration.refresh_api_key_hook is None:
        if kube_configuration.username or kube_configuration.password:
            basic: str | None = kube_configuration.get_basic_auth_token()
            return lambda: basic
        return None
    lock = threading.Lock()

    def authorization() -> str | None:
        # The refresh hook (exec plugin, token file) mutates the Configuration: one caller at a time.
        with lock:
            try:
                value = kube_configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
            except Exception as exc:  # plugin failures surface as many types
                raise ConfigError(f"refreshing the client credentials failed: {exc}") from exc
        return str(value) if value else None

    return authorization


def from_kube_configuration(kube_configuration: Any, **options: Any) -> ClientConfig:
    """Copy a ``kubernetes.client.Configuration`` into a ``ClientConfig``; ``options`` override."""
    values: dict[str, Any] = {
        "host": kube_configuration.host,
        "verify_ssl": bool(kube_configuration.verify_ssl),
        "ca_file": kube_configuration.ssl_ca_cert or None,
        "ca_data": getattr(kube_configuration, "ca_cert_data", None) or None,
        "cert_file": kube_configuration.cert_file or None,
        "key_file": kube_configuration.key_file or None,
        "tls_server_name": getattr(kube_configuration, "tls_server_name", None) or None,
        "authorization": _authorization_from(kube_configuration),
        "proxy": kube_configuration.proxy or None,
        "proxy_headers": kube_configuration.proxy_headers or None,
        "no_proxy": getattr(kube_configuration, "no_proxy", None) or None,
    }
    values.update(options)
    return ClientConfig(**values)


def _load_incluster() -> Any:
    from kubernetes.client import Configuration
    from kubernetes.config import load_incluster_config

    kube_configuration = Configuration()
    # try_refresh_token re-reads the projected token file (it rotates hourly) via the refresh hook.
    load_incluster_config(client_configuration=kube_configuration, try_refresh_token=True)  # type: ignore[no-untyped-call]
    return kube_configuration


def _load_kubeconfig(path: str, context: str | None) -> Any:
    from kubernetes.client import Configuration
    from kubernetes.config import load_kube_config

    kube_configuration = Configuration()
    # persist_config stays on: auth-provider plugins (OIDC) rotate refresh tokens that kubectl
    # must find in the file afterwards, exactly as kubectl itself does.
    load_kube_config(config_file=path, context=context, client_configuration=kube_configuration)  # type: ignore[no-untyped-call]
    return kube_configuration


def load_config(
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    **options: Any,
) -> ClientConfig:
    """Load the client configuration the way controller-runtime does.

    Order: the ``kubeconfig`` argument; else the ``KUBECONFIG`` environment variable (a
    ``:``-separated list is merged); else the pod's service account when ``KUBERNETES_SERVICE_HOST``
    is set and no ``context`` was asked for; else ``~/.kube/config``. ``options`` are
    ``ClientConfig`` fields (``qps``, ``burst``, timeouts...). Any failure raises ``ConfigError``
    naming the source that was tried.
    """
    try:
        if kubeconfig is not None:
            return _from_kubeconfig(os.fspath(kubeconfig), context, options)
        env_path = os.environ.get("KUBECONFIG")
        if env_path:
            return _from_kubeconfig(env_path, context, options)
        incluster_error: Exception | None = None
        if os.environ.get(_SERVICE_HOST_ENV) and context is None:
            try:
                return from_kube_configuration(_load_incluster(), **options)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported below, with the kubeconfig's error
                incluster_error = exc
        default_path = os.path.expanduser(_DEFAULT_KUBECONFIG)
        if incluster_error is not None and not os.path.exists(default_path):
            raise ConfigError(
                f"in-cluster configuration failed ({incluster_error}) and {default_path} does not exist"
            ) from incluster_error
        return _from_kubeconfig(default_path, context, options)
    except ConfigError:
        raise
    except TypeError as exc:  # an unknown option name
        raise ConfigError(f"invalid client option: {exc}") from exc


def _from_kubeconfig(path: str, context: str | None, options: dict[str, Any]) -> ClientConfig:
    try:
        kube_configuration = _load_kubeconfig(path, context)
    except Exception as exc:  # the loader raises ConfigException, OSError, YAML and key errors
        where = f"context {context!r} of " if context else ""
        raise ConfigError(f"cannot load {where}kubeconfig {path}: {exc}") from exc
    return from_kube_configuration(kube_configuration, **options)
