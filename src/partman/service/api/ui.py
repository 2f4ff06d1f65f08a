"""The web UI (one page and its static files, from the package) and the API's documentation
pages, whose Swagger UI and ReDoc assets come from the `fastapi-offline` package: FastAPI's
default pages load them from a CDN, which leaves /docs blank on a machine without internet."""

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

UI_DIR = resources.files("partman.service").joinpath("ui")
DOCS_ASSETS = resources.files("fastapi_offline").joinpath("static")
DOCS_PREFIX = "/docs-assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def mount(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(UI_DIR.joinpath("index.html")), media_type="text/html")

    app.mount("/ui", StaticFiles(directory=str(UI_DIR)), name="ui")
    mount_docs(app)


def mount_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc, every asset served from here (create the app with
    docs_url=None and redoc_url=None)."""
    app.mount(DOCS_PREFIX, StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=app.title + " - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT,
            swagger_js_url=f"{root}{DOCS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_PREFIX}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=app.title + " - ReDoc",
            redoc_js_url=f"{root}{DOCS_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_PREFIX}/favicon.png",
            with_google_fonts=False,
        )
