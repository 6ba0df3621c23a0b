// playground: filled next
