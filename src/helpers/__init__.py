"""Helpers of the transformer inference acceleration workbook."""
