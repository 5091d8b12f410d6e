"""Raw Fortran-order weight folders: import, export and layout detection."""
