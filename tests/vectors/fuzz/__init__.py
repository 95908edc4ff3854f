"""Inputs that once broke a decoder under fuzzing, one folder per decoder, and the table
of decoders that fuzzing and the regression tests share."""
