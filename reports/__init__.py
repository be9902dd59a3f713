"""Reports for regulators and managers: a document model, PDF/XLSX/CSV renderers, the report kinds, the archive."""
