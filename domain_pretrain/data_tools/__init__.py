"""Raw domain text -> sentences -> jieba words -> token ids with whole-word boundaries."""
