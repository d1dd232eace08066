"""The decider's key files under RECTRACK_HOME/keys and the trusted decider keys read from them
(infra/decider_keys.py), on a temporary folder."""

import stat
from pathlib import Path

import pytest

from events.ed25519 import key_id_of
from infra.decider_keys import FileDeciderKeys, decider_sealer, trust_public_key
from infra.key_files import KeyFileError
from infra.settings import Settings
from tests.sealing import untrusted_sealer


def settings_in(home: Path) -> Settings:
    return Settings.from_env({"RECTRACK_HOME": str(home)})


def test_the_deciders_key_is_made_once_private_and_its_public_key_trusted(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    sealer = decider_sealer(settings)
    assert stat.S_IMODE(settings.decider_key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.keys_dir.stat().st_mode) == 0o700
    assert decider_sealer(settings).key_id == sealer.key_id  # loaded, not made again
    assert repr(sealer) == f"Sealer(key_id={sealer.key_id})"  # never the key itself
    trusted = FileDeciderKeys(settings.trusted_deciders_dir)
    key = trusted.public_key(sealer.key_id, 0, 0)
    assert key is not None and key.public_bytes_raw() == sealer.public_key
    assert trusted.key_ids() == [sealer.key_id]
    assert "PRIVATE" not in (settings.trusted_deciders_dir / f"{sealer.key_id}.pub").read_text()


def test_key_folders_made_for_a_public_key_first_are_private_too(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    trust_public_key(settings.trusted_deciders_dir, untrusted_sealer().public_key)  # as tests do
    decider_sealer(settings)
    for folder in (settings.keys_dir, settings.trusted_deciders_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_rotating_is_deleting_the_private_key_and_the_old_one_stays_trusted(
    tmp_path: Path,
) -> None:
    settings = settings_in(tmp_path)
    old = decider_sealer(settings)
    trusted = FileDeciderKeys(settings.trusted_deciders_dir)
    assert trusted.key_ids() == [old.key_id]
    settings.decider_key_file.unlink()  # the decider is stopped; its next start makes a new key
    new = decider_sealer(settings)
    assert new.key_id != old.key_id
    # A reader started before the new key existed finds it when a seal first names it.
    assert trusted.public_key(new.key_id, 0, 10) is not None
    assert trusted.public_key(old.key_id, 0, 0) is not None
    (settings.trusted_deciders_dir / f"{old.key_id}.pub").unlink()  # no longer trusted
    assert FileDeciderKeys(settings.trusted_deciders_dir).public_key(old.key_id, 0, 0) is None


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    decider_sealer(settings)
    settings.decider_key_file.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by other users") as refused:
        decider_sealer(settings)
    assert "PRIVATE KEY" not in str(refused.value)
    settings.decider_key_file.write_text("not a key")
    settings.decider_key_file.chmod(0o600)
    with pytest.raises(KeyFileError, match="no unencrypted PEM private key"):
        decider_sealer(settings)


def test_only_well_formed_key_files_named_by_their_key_id_are_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "trusted"
    good, renamed = untrusted_sealer(), untrusted_sealer()
    trust_public_key(folder, good.public_key)
    # A file named for one key holding another: an operator reading the name would be misled.
    misnamed = [f"{good.key_id[:31]}{c}.pub" for c in "01" if c != good.key_id[-1]]
    (folder / misnamed[0]).write_text((folder / f"{key_id_of(good.public_key)}.pub").read_text())
    trust_public_key(folder, renamed.public_key).rename(folder / f"{renamed.key_id[:31]}x.pub")
    (folder / "garbage.pub").write_text("not base64!")
    assert FileDeciderKeys(folder).key_ids() == [good.key_id]
    assert FileDeciderKeys(tmp_path / "missing").key_ids() == []


def test_the_keys_folder_can_live_outside_rectrack_home(tmp_path: Path) -> None:
    elsewhere = tmp_path / "mounted" / "keys"
    settings = Settings.from_env(
        {"RECTRACK_HOME": str(tmp_path / "home"), "RECTRACK_KEYS_DIR": str(elsewhere)}
    )
    assert settings.decider_key_file == elsewhere / "decider.key"
    assert settings.trusted_deciders_dir == elsewhere / "trusted-deciders"
    sealer = decider_sealer(settings)
    assert (elsewhere / "trusted-deciders" / f"{sealer.key_id}.pub").exists()
    assert not (tmp_path / "home").exists()
    assert settings_in(tmp_path).keys_dir == tmp_path.resolve() / "keys"
