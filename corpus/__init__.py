"""Sample support corpus (documents are data; only build_pdf.py is code). Not uploaded."""
