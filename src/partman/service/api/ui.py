"""The web UI: one page and its static files, from the package."""

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = resources.files("partman.service").joinpath("ui")


def mount(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(UI_DIR.joinpath("index.html")), media_type="text/html")

    app.mount("/ui", StaticFiles(directory=str(UI_DIR)), name="ui")
