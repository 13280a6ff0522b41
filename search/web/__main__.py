from search.web.server import main

main()
