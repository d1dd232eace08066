"""The Docker image can render PDF papers and layers its dependencies before the source.

No Docker engine is needed: the Dockerfile and requirements.lock are read as text, and the
system libraries are the ones the installed WeasyPrint's own source opens.
"""

import ast
import importlib.util
import io
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pypdf import PdfReader

from services.paper.render import render_pdf

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
LOCK = ROOT / "requirements.lock"

# Each shared library WeasyPrint dlopens (its Linux soname) -> the Debian bookworm package that
# ships it, or None for an optional library bookworm does not package.
DEBIAN_PACKAGE: dict[str, str | None] = {
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libpango-1.0.so.0": "libpango-1.0-0",
    "libpangoft2-1.0.so.0": "libpangoft2-1.0-0",
    "libharfbuzz.so.0": "libharfbuzz0b",
    "libharfbuzz-subset.so.0": "libharfbuzz-subset0",
    "libfontconfig.so.1": "libfontconfig1",
    # HarfBuzz's vector library is newer than bookworm's HarfBuzz 6; WeasyPrint does without.
    "libharfbuzz-vector.so.0": None,
}


def weasyprint_libraries() -> dict[str, bool]:
    """The sonames WeasyPrint's text/ffi.py passes to `_dlopen`, each with whether it may fail."""
    spec = importlib.util.find_spec("weasyprint")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).parent / "text" / "ffi.py"
    libraries: dict[str, bool] = {}
    for node in ast.walk(ast.parse(source.read_text())):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_dlopen"
        ):
            continue
        names = [a.value for a in node.args if isinstance(a, ast.Constant)]
        optional = any(
            k.arg == "allow_fail" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
        sonames = [n for n in names if isinstance(n, str) and re.search(r"\.so\.\d+$", n)]
        assert len(sonames) == 1, f"expected one Linux soname among {names}"
        libraries[sonames[0]] = optional
    return libraries


def instructions(stage: str) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (KEYWORD, arguments), comments dropped, lines joined."""
    lines = [ln for ln in stage.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def final_stage() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text()
    return instructions(text[text.rindex("\nFROM ") :])


def apt_packages() -> set[str]:
    runs = [args for kw, args in final_stage() if kw == "RUN" and "apt-get install" in args]
    assert len(runs) == 1, "one apt-get install in the final stage"
    install = runs[0].split("apt-get install", 1)[1].split("&&", 1)[0]
    return {w for w in install.split() if not w.startswith("-")}


def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        assert match, f"requirements.lock: {line!r} is not name==version"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_library_weasyprint_opens_is_known() -> None:
    libraries = weasyprint_libraries()
    assert {"libpango-1.0.so.0", "libfontconfig.so.1", "libgobject-2.0.so.0"} <= set(libraries)
    unknown = set(libraries) - set(DEBIAN_PACKAGE)
    assert not unknown, f"WeasyPrint opens libraries with no Debian package here: {unknown}"
    for soname, optional in libraries.items():
        assert optional or DEBIAN_PACKAGE[soname], f"{soname} is required but has no package"


def test_the_image_installs_every_library_weasyprint_needs() -> None:
    packages = apt_packages()
    wanted = {DEBIAN_PACKAGE[so] for so in weasyprint_libraries()} - {None}
    missing = wanted - packages
    assert not missing, f"the Dockerfile's apt-get install lacks {sorted(m or '' for m in missing)}"


def test_the_image_installs_a_font_and_keeps_apt_small() -> None:
    assert any(p.startswith("fonts-") for p in apt_packages()), "no font package installed"
    run = next(args for kw, args in final_stage() if kw == "RUN" and "apt-get install" in args)
    assert "--no-install-recommends" in run
    assert "apt-get update" in run
    assert "rm -rf /var/lib/apt/lists/*" in run


def test_the_package_names_ship_those_libraries_on_debian() -> None:
    """dpkg says which package owns each library WeasyPrint loads, on the Debian release the
    image is built from (the project's machines run it too)."""
    assert shutil.which("dpkg-query"), "this check needs Debian's dpkg-query"
    os_release = Path("/etc/os-release").read_text()
    assert "VERSION_CODENAME=bookworm" in os_release, "the image's package names are bookworm's"
    for soname, package in DEBIAN_PACKAGE.items():
        if package is None:
            continue
        found = subprocess.run(
            ["dpkg-query", "-S", f"*/{soname}"], capture_output=True, text=True, check=False
        )
        if found.returncode != 0:
            continue  # not installed here; nothing to cross-check
        owners = {line.split(":", 1)[0] for line in found.stdout.splitlines()}
        assert package in owners, f"{soname} is owned by {owners}, not {package}"


def test_the_image_is_debian_bookworm() -> None:
    base = next(args for kw, args in final_stage() if kw == "FROM")
    assert base.startswith("python:3.11-slim-bookworm")


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    steps = final_stage()
    copies = [(i, args) for i, (kw, args) in enumerate(steps) if kw == "COPY"]
    source = next(i for i, args in copies if args.startswith(". "))
    lock_copy = next(i for i, args in copies if args.startswith("requirements.lock "))
    lock_install = next(
        i
        for i, (kw, args) in enumerate(steps)
        if kw == "RUN" and "pip install" in args and "-r /tmp/requirements.lock" in args
    )
    assert lock_copy < lock_install < source
    # Before the source, only what installing the dependencies needs is copied.
    for i, args in copies:
        if i < source:
            assert args.split()[0] in {"requirements.lock", "pyproject.toml"}, args
    project_install = next(
        args for i, (kw, args) in enumerate(steps) if i > source and kw == "RUN" and "/src" in args
    )
    assert "pip install" in project_install and "--no-deps" in project_install
    assert "pip check" in project_install
    # The web assets, the non-root user and its private keys folder are still there.
    assert any(args.startswith("--from=assets ") for _, args in copies)
    assert ("USER", "rectrack") in steps
    assert any("install -d -o rectrack -g rectrack -m 0700" in a for kw, a in steps if kw == "RUN")


def test_the_lock_pins_every_runtime_dependency() -> None:
    pins = lock_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"requirements.lock lacks {requirement.name}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, pyproject.toml wants {requirement}"
        )
    assert "rectrack" not in pins
    for tool in ("pytest", "mypy", "ruff", "import-linter", "playwright"):
        assert tool not in pins, f"the dev tool {tool} is in requirements.lock"
    # Indirect dependencies are pinned too (WeasyPrint's and FastAPI's, for instance).
    assert {"pydyf", "tinycss2", "starlette", "pydantic-core"} <= set(pins)


def test_a_pdf_renders_here_with_those_libraries() -> None:
    """The paper path: WeasyPrint with Pango, HarfBuzz and a font makes a PDF with our text."""
    pdf = render_pdf("<html><body><h1>HMICS Improvement Update</h1><p>Hate Crime</p></body></html>")
    assert pdf.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "HMICS Improvement Update" in text and "Hate Crime" in text
