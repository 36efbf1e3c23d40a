"""Twenty exchanges about different topics, and a later question about the third one."""

from __future__ import annotations

TOPICS: list[tuple[str, str]] = [
    ("What's your favourite colour?", "I like deep ocean blue the most."),
    ("Do you like music?", "Yes, mostly lo-fi beats and some jazz piano."),
    (
        "I adopted a kitten called Miso last week.",
        "A kitten named Miso! Cats are wonderful little companions.",
    ),
    ("Which world should we visit next?", "Let's try the rooftop cafe world, it has a great view."),
    ("I'm studying for my chemistry exam.", "Good luck! Balancing redox equations takes practice."),
    ("Have you ever seen snow?", "Only in pictures, but snowy mountains look beautiful."),
    (
        "What do you think about pineapple on pizza?",
        "Sweet and salty together can work, I'm on team pineapple.",
    ),
    ("My bike got a flat tire today.", "Oh no, hope you can patch the inner tube easily."),
    ("Can you recommend a good book?", "The Hobbit is a cozy adventure worth reading."),
    ("I'm learning to play the guitar.", "Start with simple chords like G, C and D."),
    ("What's the weather like in your world?", "It's always a calm starry night here."),
    ("I just got back from a trip to Japan.", "Japan sounds amazing, did you try fresh ramen?"),
    ("Do you play any video games?", "I enjoy puzzle games and rhythm games."),
    ("My sister is getting married in June.", "Congratulations to her, a summer wedding sounds lovely."),
    ("How do I make avatars in Unity?", "You can use the VRChat creator companion and Unity 2022."),
    ("I started running every morning.", "Morning runs are a great habit for energy."),
    ("What's your opinion on coffee?", "Coffee smells nice, but I'd pick tea most days."),
    ("I'm building a mechanical keyboard.", "Tactile switches and PBT keycaps are a nice combination."),
    ("Did you watch the meteor shower last night?", "I missed it, were there many shooting stars?"),
    ("My laptop keeps overheating.", "Cleaning the fans and using a cooling pad can help."),
]

THIRD_TOPIC_QUESTION = "How is my little cat Miso doing, do you remember her?"
