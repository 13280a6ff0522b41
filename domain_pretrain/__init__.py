"""Domain-adaptive pretraining of ERNIE / ERNIE-Gram: whole-word n-gram MLM + sentence order."""
