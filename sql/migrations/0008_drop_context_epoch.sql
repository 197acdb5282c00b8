-- pgtenancy: drop the sequence tenancy.context_epoch; contexts are bound by tenancy.context_key.
-- Nothing reads it since the context check moved to context_key; member changes stop bumping it.

drop sequence tenancy.context_epoch;
