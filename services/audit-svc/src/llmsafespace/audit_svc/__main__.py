from llmsafespace.servicekit import serve

from .app import create_app
from .settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
