"""`python -m search.web_service`: the web service's command (search/web/, its docstring says what it serves)."""

from search.web.server import main

if __name__ == "__main__":
    main()
