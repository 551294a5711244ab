"""Tiny random checkpoints of real vision-language families (LLaVA, LLaVA-NeXT, BLIP-2,
InstructBLIP), built offline in under a second, for tests, the placeholder default and benches."""
