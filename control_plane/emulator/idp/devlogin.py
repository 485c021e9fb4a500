"""Complete a device-flow login at the embedded provider's development pages, over HTTP.

What a person does in a browser at the verification URL (confirm the code, sign in as a demo
user, grant consent), done by following the provider's own HTML forms. Only for the embedded
provider (its dev interaction pages accept any demo user without a password): tests and
``make demo`` use it; a real IdP's pages are for people.
"""

from __future__ import annotations

import html
import re

import httpx

from control_plane.errors import InfraError

_FORM = re.compile(r"<form[^>]*action=\"([^\"]*)\"[^>]*>(.*?)</form>", re.S | re.I)
_INPUT = re.compile(r"<input[^>]*>", re.I)
_ATTR = re.compile(r"(\w+)=\"([^\"]*)\"")


def _forms(page: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for action, body in _FORM.findall(page):
        fields: dict[str, str] = {}
        for tag in _INPUT.findall(body):
            attrs = dict(_ATTR.findall(tag))
            if "name" in attrs:
                fields[attrs["name"]] = html.unescape(attrs.get("value", ""))
        out.append((html.unescape(action), fields))
    return out


def complete_device_login(verification_uri_complete: str, user: str, *, max_steps: int = 12) -> None:
    """Confirm the user code, log in as ``user`` and consent; raises InfraError if it cannot."""
    with httpx.Client(follow_redirects=True, timeout=10) as client:
        page = client.get(verification_uri_complete)
        for _ in range(max_steps):
            text = page.text
            if "Sign-in Success" in text or "successfully" in text.lower():
                return
            forms = _forms(text)
            if not forms:
                raise InfraError(f"device login for {user} stopped at a page without a form",
                                 hint="see the provider's log under $MLCTL_HOME/logs")
            action, fields = forms[0]
            if fields.get("prompt") == "login":
                fields.update(login=user, password="dev-pages-ignore-it")  # noqa: S106 -- dev pages take any
            elif "user_code" in fields and "xsrf" in fields and "Continue" in text and "confirm" not in fields:
                fields["confirm"] = "yes"
            url = action if action.startswith("http") else str(page.url.join(action))
            page = client.post(url, data=fields)
            if page.status_code >= 400:
                raise InfraError(f"device login for {user} failed at {url} ({page.status_code})",
                                 hint="is the user one of the demo users (policies/roles.example.yaml)?")
    raise InfraError(f"device login for {user} did not finish in {max_steps} steps")
