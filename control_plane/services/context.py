"""The Context a verb runs in: the acting identity, the settings, and the environments it loads.

A front end builds one per command (the CLI's root callback) or per request (the API server), and
passes it down. Code below the service layer that asks "who acts?" (``identity.current()``) gets the
Context's actor while a verb runs inside ``ctx.acting()``: a ContextVar, so concurrent requests
never see each other's identity.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from control_plane import environments, identity, settings
from control_plane.identity import Actor

if TYPE_CHECKING:
    from blueprints.schema import Environment
    from control_plane.access import AccessDecision

__all__ = ["Context"]


@dataclass
class Context:
    """Who acts, with which settings. ``actor`` is resolved on first use (a cached token may need a
    refresh at the identity provider), then fixed for the Context's life."""

    settings: settings.Settings = field(default_factory=settings.current)
    _actor: Actor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_actor(cls, actor: Actor) -> Context:
        """A Context for an identity the caller has already established (the API server's verified
        token, a test's asserted user)."""
        return cls(settings=settings.current(), _actor=actor)

    def with_settings(self, **changes: object) -> Context:
        """The same actor with some settings changed (a request's ``blueprint``, say)."""
        return Context(settings=dataclasses.replace(self.settings, **changes), _actor=self._actor)  # type: ignore[arg-type]

    @property
    def actor(self) -> Actor:
        with self._lock:
            if self._actor is None:
                self._actor = identity.current()
            return self._actor

    @contextmanager
    def acting(self) -> Iterator[Context]:
        """Run a verb's body as this Context's actor (what ``identity.current()`` answers inside)."""
        with identity.acting(self.actor):
            yield self

    def environment(self, name: str) -> Environment:
        """The blueprint environment ``name`` (cached per process: see ``environments.resolve``)."""
        return environments.resolve(name)

    def authorize(self, action: str, subject: str, *, env: Environment | str | None = None) -> AccessDecision:
        """RBAC for ``action`` on ``subject`` as this actor; with ``env``, the tier's identity rule too.
        A denial is audited and raised as PolicyViolation naming the missing permission and its fix."""
        from control_plane import access  # lazy: one verb's code, kept off CLI start-up

        environment = self.environment(env) if isinstance(env, str) else env
        with self.acting():
            return access.authorize(action, subject, env=environment)
