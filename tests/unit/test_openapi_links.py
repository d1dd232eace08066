"""The OpenAPI links a stateful client follows name operations the API really has."""

from pathlib import Path

from infra.settings import Settings
from services.web.app import create_app


def test_every_link_of_the_command_outcomes_names_an_operation_and_its_parameters(
    tmp_path: Path,
) -> None:
    document = create_app(Settings.from_env({"RECTRACK_HOME": str(tmp_path)})).openapi()
    operations = {
        op["operationId"]: {p["name"] for p in op.get("parameters", [])}
        for path in document["paths"].values()
        for op in path.values()
    }
    responses = document["paths"]["/commands"]["post"]["responses"]
    links = [link for code in ("201", "202") for link in responses[code]["links"].values()]
    assert len(links) == 4
    for link in links:
        assert link["operationId"] in operations
        assert set(link["parameters"]) <= operations[link["operationId"]]


def test_the_documented_command_body_accepts_the_demo_commands_without_their_actor(
    tmp_path: Path,
) -> None:
    import orjson
    from jsonschema import Draft202012Validator

    from services.cli.data import demo_file

    document = create_app(Settings.from_env({"RECTRACK_HOME": str(tmp_path)})).openapi()
    body = document["paths"]["/commands"]["post"]["requestBody"]["content"]["application/json"]
    validator = Draft202012Validator({**body["schema"], "components": document["components"]})
    lines = demo_file().read_bytes().splitlines()
    for line in lines:
        command = orjson.loads(line)
        command.pop("actor", None)
        validator.validate(command)
    with_actor = orjson.loads(lines[0])
    assert not validator.is_valid(with_actor)  # over HTTP the actor comes from the token
