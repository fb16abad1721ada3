"""Translation catalogs: extracting the template, updating and compiling the catalogs."""
