"""The console's files are a list made once: a name a client sends is looked up, never joined to
a path, and only files of the listed types in the static folder are on it."""

from services.gateway.console.service import FILES, ConsoleFiles


def test_only_the_static_folders_files_of_known_types_are_served_by_their_names(tmp_path):
    (tmp_path / "views").mkdir()
    for name in ("index.html", "console.js", "views/models.js", "notes.py", "data.bin"):
        (tmp_path / name).write_text("x")
    files = ConsoleFiles(tmp_path)
    assert set(files.served) == {"index.html", "console.js", "views/models.js"}
    assert files.find("views/models.js") == (tmp_path / "views" / "models.js", "text/javascript; charset=utf-8")
    assert files.find("../console/api.py") is None and files.find("notes.py") is None


def test_the_consoles_modules_are_served_and_no_python_is():
    served = ConsoleFiles().served
    assert {"console.js", "shared/api.js", "views/models.js", "index.html"} <= set(served)
    assert not [name for name in served if name.endswith(".py")]
    assert all(FILES in path.parents for path in served.values())


def test_a_missing_folder_serves_nothing(tmp_path):
    assert ConsoleFiles(tmp_path / "nowhere").served == {}
