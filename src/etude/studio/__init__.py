"""étude studio: generation as a local web service (an HTTP API on FastAPI and uvicorn) and the
page a composer uses in the browser (plain HTML, CSS and JavaScript, no build step). Takes are
the files the studio writes; performance goes to the outputs `etude perform` has."""
