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
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from ...model.service_options import is_loopback
from .access import Access
from .security import SecurityHeaders, hashed_policy, policy

UI_DIR = resources.files("partman.service").joinpath("ui")
DOCS_ASSETS = resources.files("fastapi_offline").joinpath("static")
DOCS_PREFIX = "/docs-assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def mount(app: FastAPI, access: Access | None = None) -> None:
    """The UI, the API's documentation, and the security headers on every response of `app`
    (`security.SecurityHeaders`). `access` guards /openapi.json, /docs and /redoc as reads
    (None: open)."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(UI_DIR.joinpath("index.html")), media_type="text/html")

    app.mount("/ui", StaticFiles(directory=str(UI_DIR)), name="ui")
    mount_docs(app, access)
    options = None if access is None else access.options
    loopback = options is not None and is_loopback(options.host)
    app.add_middleware(SecurityHeaders, loopback_only=loopback)


def _own_policy(page: HTMLResponse) -> HTMLResponse:
    """The page's Content-Security-Policy allows its own inline blocks by their hashes, and
    images from data: URLs (Swagger UI's stylesheet draws its icons with them; an image runs
    no script)."""
    page.headers["Content-Security-Policy"] = hashed_policy(
        bytes(page.body).decode(), {"img-src": ["data:"]}
    )
    return page


def mount_docs(app: FastAPI, access: Access | None = None) -> None:
    """/docs (Swagger UI) and /redoc, every asset served from here (create the app with
    docs_url and redoc_url None), and /openapi.json when the app was made with openapi_url
    None; all three are reads (a token with `read_requires_token`). Each page's inline
    start-up script is allowed by its hash."""
    app.mount(DOCS_PREFIX, StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    reads = [] if access is None else [access.read]
    if app.openapi_url is None:

        @app.get(openapi_url, include_in_schema=False, dependencies=reads)
        def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=reads)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _own_policy(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=app.title + " - Swagger UI",
                oauth2_redirect_url=root + OAUTH2_REDIRECT,
                swagger_js_url=f"{root}{DOCS_PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{DOCS_PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{root}{DOCS_PREFIX}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return _own_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False, dependencies=reads)
    def redoc(request: Request) -> HTMLResponse:
        """ReDoc styles itself with <style> blocks it writes at run time (styled-components):
        no hash can name those, so this page alone allows inline styles (not scripts), and
        the workers it starts from blob: URLs."""
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=app.title + " - ReDoc",
            redoc_js_url=f"{root}{DOCS_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_PREFIX}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = policy(
            {
                "style-src": ["'unsafe-inline'"],
                "img-src": ["data:"],
                "worker-src": ["'self'", "blob:"],
            }
        )
        return page
