"""Health credentials: vaccination, test and recovery certificates issued as an EU DCC,
a SMART Health Card and an SD-JWT VC, each in one QR code, verified offline."""
