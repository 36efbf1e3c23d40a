"""Ordinary small-talk questions, shared by the strike-rate test and bench/thinking.py."""

ORDINARY_QUESTIONS = (
    "Hi, what's your name?",
    "How are you doing today?",
    "What's your favourite food?",
    "Do you like music?",
    "Where are you from?",
    "What do you like to do for fun?",
    "Have you been to any cool worlds lately?",
    "Do you have any pets?",
    "What's the weather like where you are?",
    "Can you recommend a good movie?",
    "What's your favourite colour?",
    "Do you play any games?",
    "I just got a new avatar, what do you think?",
    "Are you a morning person or a night owl?",
    "What's the best thing that happened to you this week?",
    "Do you like dancing?",
    "What kind of books do you read?",
    "I'm feeling a bit tired today.",
    "Tell me something interesting.",
    "It was nice talking to you, see you later!",
)
