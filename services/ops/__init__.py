"""Operations: the pipeline's health from the broker (``status``), dead letters (``deadletters``) and
throughput (``throughput``), for ``circles ops`` and the coordinator's operations page alike."""
