"""The console's templates, static files, UI catalogs (i18n) and the npm-installed front-end libraries."""
