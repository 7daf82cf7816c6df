"""PluginSettings: a plugin's settings parsed as the core's are."""

import pytest

from vexpenses_core.settings import ConfigurationError, PluginSettings, Setting, number, one_of

SETTINGS = PluginSettings(
    "hello",
    Setting("greeting", "Hello"),
    Setting("repeat", "1", number()),
    Setting("pause", "0", number(0, float)),
    Setting("tone", "warm", one_of("warm", "dry")),
    Setting("secret", "", env="HELLO_SECRET"),
)


def test_defaults_ini_and_variables():
    assert SETTINGS.read({}, {}) == {"greeting": "Hello", "repeat": 1, "pause": 0.0,
                                     "tone": "warm", "secret": ""}
    ini = {"vexpenses.hello.repeat": "3", "vexpenses.hello.tone": "dry"}
    assert SETTINGS.read(ini, {})["repeat"] == 3
    # the variable wins over the ini file, even when empty
    values = SETTINGS.read(ini, {"VEXPENSES_HELLO_REPEAT": "5", "VEXPENSES_HELLO_GREETING": "",
                                 "HELLO_SECRET": "s"})
    assert (values["repeat"], values["greeting"], values["secret"]) == (5, "", "s")


@pytest.mark.parametrize("name, raw, message", [
    ("repeat", "0", "vexpenses.hello.repeat (VEXPENSES_HELLO_REPEAT) must be a whole number "
                    "of at least 1, not '0'"),
    ("repeat", "1.5", "must be a whole number of at least 1"),
    ("pause", "nan", "must be a number of at least 0"),
    ("tone", "Warm", "vexpenses.hello.tone (VEXPENSES_HELLO_TONE) must be one of warm, dry, "
                     "not 'Warm'"),
])
def test_bad_values_name_the_setting_the_variable_and_the_rule(name, raw, message):
    with pytest.raises(ConfigurationError) as caught:
        SETTINGS.read({f"vexpenses.hello.{name}": raw}, {})
    assert message in str(caught.value)


def test_undocumented_names_what_a_page_misses():
    page = "`vexpenses.hello.greeting` (`VEXPENSES_HELLO_GREETING`), `vexpenses.hello.repeat`"
    assert SETTINGS.undocumented(page) == ["repeat", "pause", "tone", "secret"]


ODD = PluginSettings(
    "odd",
    Setting("mode", "auto", one_of("auto", "on", "off", fold=True), env=False,
            rule="must be auto, on or off"),
    Setting("key", "", secret=True),
    Setting("count", "1", number(), env=False),
)


def test_ini_only_settings_rules_and_secrets():
    # no variable for an ini-only setting, but a value from code is taken as given
    values = ODD.read({"vexpenses.odd.mode": " ON ", "vexpenses.odd.count": 4},
                      {"VEXPENSES_ODD_MODE": "off", "VEXPENSES_ODD_KEY": " k "})
    assert values == {"mode": "on", "key": " k ", "count": 4}
    with pytest.raises(ConfigurationError) as caught:
        ODD.read({"vexpenses.odd.mode": "maybe"}, {})
    assert str(caught.value) == "vexpenses.odd.mode must be auto, on or off, not 'maybe'"
    assert ODD.undocumented("`vexpenses.odd.mode` `vexpenses.odd.count` `vexpenses.odd.key`"
                            ) == ["key"]


def test_a_secret_is_never_repeated():
    def refuse(raw):
        raise ValueError("must be hex")

    with pytest.raises(ConfigurationError) as caught:
        PluginSettings("odd", Setting("key", "", refuse, secret=True)).read(
            {}, {"VEXPENSES_ODD_KEY": "hunter2"})
    assert str(caught.value) == "vexpenses.odd.key (VEXPENSES_ODD_KEY) must be hex"
