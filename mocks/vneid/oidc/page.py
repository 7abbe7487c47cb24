"""The log-in page GET /authorize shows: a plain HTML form that posts the request back with the
citizen's personal ID and passcode (a test posts the same form without a browser)."""

from __future__ import annotations

from html import escape

from mocks.vneid.oidc.requests import AuthorizationRequest

__all__ = ["error_page", "login_page"]

_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>VNeID – Đăng nhập</title></head>
<body>
<h1>Đăng nhập bằng tài khoản định danh điện tử</h1>
<p>{client} yêu cầu xác thực tài khoản VNeID của bạn.</p>
<form method="post" action="authorize">
{hidden}
<label>Số định danh cá nhân <input name="personal_id" inputmode="numeric" autocomplete="username"
  pattern="[0-9]{{12}}" required></label>
<label>Mật khẩu (passcode) <input name="passcode" type="password" inputmode="numeric"
  autocomplete="current-password" pattern="[0-9]{{6}}" required></label>
<button type="submit">Đăng nhập</button>
</form>
</body></html>
"""
_ERROR = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>VNeID – Lỗi</title></head>
<body><h1>Yêu cầu đăng nhập không hợp lệ</h1><p><code>{error}</code>: {description}</p></body></html>
"""


def login_page(request: AuthorizationRequest) -> str:
    """The form, carrying the checked request in hidden fields."""
    hidden = "\n".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in request.form_fields().items()
    )
    return _PAGE.format(client=escape(request.client_id), hidden=hidden)


def error_page(error: str, description: str) -> str:
    """What the citizen sees when the request cannot be sent back to the client (bad client or URI)."""
    return _ERROR.format(error=escape(error), description=escape(description))
