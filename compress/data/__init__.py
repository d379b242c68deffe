"""The examples every task reads, through ``datasets``: shipped data (offline), local files
or hub datasets (:mod:`.tables`), and how they become labelled splits (:mod:`.labelled`)."""
