"""Pure torch code shared by the worker and the API: no database, no HTTP."""
