"""POST /api/v1/user/me/password sends the "password changed" notice, through the
real API to a real SMTP server, as a reset does."""

from vexpenses_mailer.testing import PASSWORD, register

NEW = "a brand new passphrase"


def login(app, password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": "ana@example.com", "password": password}, status=status)


def change(app, token, current=PASSWORD, status=200):
    body = {"current_password": current, "password": NEW, "password_confirmation": NEW}
    return app.post_json("/api/v1/user/me/password", body, status=status,
                         headers={"Authorization": f"Bearer {token}"})


def test_a_password_change_sends_the_notice(mail_app):
    app = mail_app(**{"vexpenses.ratelimit.enabled": "false"})
    register(app, status=201)
    app.sent()  # the welcome e-mail first: tasks run side by side
    token = login(app).json["data"]["token"]
    login(app)
    login(app)
    change(app, token)
    welcome, notice = app.sent()
    assert notice.rcpt_tos == ["ana@example.com"]
    assert notice["Subject"] == "Sua senha do vexpenses foi alterada"
    assert "acabou de ser alterada" in notice.text and "acabou de ser alterada" in notice.html
    # the two other sessions ended; the one that changed the password stays
    assert "encerramos 2 sessões" in notice.text
    assert NEW not in notice.text and NEW not in notice.html


def test_a_wrong_current_password_sends_nothing(mail_app):
    app = mail_app()
    register(app, status=201)
    app.sent()
    token = login(app).json["data"]["token"]
    change(app, token, current="not the password", status=422)
    assert len(app.sent()) == 1  # the welcome only


def test_the_notice_speaks_english_when_configured(mail_app):
    app = mail_app(**{"vexpenses.language": "en"})
    register(app, status=201)
    app.sent()
    change(app, login(app).json["data"]["token"])
    notice = app.sent()[-1]
    assert "has just been changed" in notice.text and "has just been changed" in notice.html
    assert "open session" not in notice.text  # no other session was open
