"""Hand-labelled data for the local analyzer: customer utterances with their intent, and a realistic
call with semantic yes/no questions whose answers a person gave by reading it.

None of the utterances copies an exemplar of pipeline/analysis/default_intents.json.
"""

from __future__ import annotations

from schemas.analysis import SemanticQuestion
from schemas.common import Role

LABELLED_INTENTS: list[tuple[str, str]] = [
    (
        "Hi, I just got my statement and there's a forty dollar fee on it I don't understand",
        "billing_question",
    ),
    ("Why is my bill so much more expensive this month?", "billing_question"),
    ("You charged my card two times for the same thing", "billing_question"),
    ("What is this service charge on my invoice for?", "billing_question"),
    (
        "I lost my job and I can't afford the whole balance, can we split it up?",
        "payment_arrangement",
    ),
    ("I'd like to pay off what I owe today with my debit card", "payment_arrangement"),
    ("Could you give me two more weeks before the payment is due?", "payment_arrangement"),
    ("I'm going to pay half now and the rest at the end of the month", "payment_arrangement"),
    ("I don't want this subscription anymore, please stop it", "cancel_service"),
    ("I'm moving to a competitor, so I need to terminate my contract", "cancel_service"),
    ("Go ahead and shut down my account, I'm done with it", "cancel_service"),
    ("I'd like to cancel the TV package but keep the internet", "cancel_service"),
    ("The wifi keeps dropping every few minutes", "technical_support"),
    ("My router has a red blinking light and nothing loads", "technical_support"),
    ("I'm getting an error message every time I try to sign in", "technical_support"),
    ("The television box is stuck on the loading screen", "technical_support"),
    ("I've called five times about this and nobody has helped me, it's disgraceful", "complaint"),
    ("The technician never showed up and didn't even call, I'm really angry", "complaint"),
    ("Your customer service is the worst I have ever dealt with", "complaint"),
    ("I moved house last week, so my mailing address needs changing", "account_update"),
    ("I got married and want to update my last name on the account", "account_update"),
    ("Can you put my new mobile number on file?", "account_update"),
    ("The tracking number says delivered but there's nothing at my door", "order_status"),
    ("It's been ten days and my parcel still hasn't shown up", "order_status"),
    ("Has my order shipped yet?", "order_status"),
    ("What would it cost to add another line to my plan?", "sales_inquiry"),
    ("I saw your ad for faster internet and I want to know more", "sales_inquiry"),
    ("Are there any discounts if I bundle phone and internet?", "sales_inquiry"),
    ("I returned the jacket two weeks ago and I still don't have my money", "refund_request"),
    ("I'd like to be reimbursed for the days without service", "refund_request"),
]

# A realistic support call (role, text) and questions a reader answered from it.
REALISTIC_CALL: list[tuple[Role, str]] = [
    (
        Role.AGENT,
        "Thank you for calling Northwind Internet, this is Marcus. How can I help you today?",
    ),
    (
        Role.CUSTOMER,
        "Hi Marcus. My internet has been going down every evening for a week and I work from home, so this is a real problem.",
    ),
    (
        Role.AGENT,
        "I'm sorry to hear that, I understand how disruptive that is. Can I have your account number to verify your identity?",
    ),
    (Role.CUSTOMER, "Sure, it's 4 4 1 9 0 2."),
    (Role.AGENT, "Thank you. Can you also confirm the name and the address on the account?"),
    (Role.CUSTOMER, "Jane Porter, 12 Elm Street."),
    (
        Role.AGENT,
        "Thanks Jane. I'm running a line test now. I can see a lot of signal errors on your connection.",
    ),
    (Role.CUSTOMER, "So is it something on my side or yours?"),
    (
        Role.AGENT,
        "It looks like a fault on the line outside your home, so it's on our side. I'll book a technician to visit tomorrow between eight and noon.",
    ),
    (Role.CUSTOMER, "Tomorrow morning works. Will I be charged for that visit?"),
    (
        Role.AGENT,
        "No, there's no charge for the visit, and I've also added a credit of ten dollars to your account for the trouble.",
    ),
    (Role.CUSTOMER, "Oh, that's nice, thank you."),
    (Role.AGENT, "You'll receive a text message confirming the appointment within the hour."),
    (Role.AGENT, "Is there anything else I can help you with today?"),
    (Role.CUSTOMER, "No, that's everything. Thanks for your help."),
    (Role.AGENT, "You're welcome Jane, thank you for calling Northwind and have a great evening."),
]

SEMANTIC_QUESTIONS: list[tuple[SemanticQuestion, str]] = [
    (
        SemanticQuestion(id="greet", question="Did the agent greet the customer?", role=Role.AGENT),
        "yes",
    ),
    (
        SemanticQuestion(
            id="name", question="Did the agent introduce themselves by name?", role=Role.AGENT
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="verify", question="Did the agent verify the customer's identity?", role=Role.AGENT
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="empathy", question="Did the agent apologize or show empathy?", role=Role.AGENT
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="further", question="Did the agent offer further assistance?", role=Role.AGENT
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="thank", question="Did the agent thank the customer for calling?", role=Role.AGENT
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="appointment",
            question="Did the agent schedule a technician appointment?",
            role=Role.AGENT,
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="credit", question="Did the agent offer a credit or compensation?", role=Role.AGENT
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="problem",
            question="Did the customer describe a connection problem?",
            role=Role.CUSTOMER,
        ),
        "yes",
    ),
    (
        SemanticQuestion(
            id="upsell",
            question="Did the agent try to sell an upgrade or a new plan?",
            role=Role.AGENT,
        ),
        "no",
    ),
    (
        SemanticQuestion(
            id="survey",
            question="Did the agent ask the customer to take a satisfaction survey?",
            role=Role.AGENT,
        ),
        "no",
    ),
    (
        SemanticQuestion(
            id="cancel", question="Did the customer ask to cancel the service?", role=Role.CUSTOMER
        ),
        "no",
    ),
    (
        SemanticQuestion(
            id="supervisor", question="Did the customer ask for a supervisor?", role=Role.CUSTOMER
        ),
        "no",
    ),
    (
        SemanticQuestion(
            id="autopay",
            question="Did the agent mention autopay or paperless billing?",
            role=Role.AGENT,
        ),
        "no",
    ),
    (
        SemanticQuestion(
            id="hold",
            question="Did the agent ask permission before placing the customer on hold?",
            role=Role.AGENT,
        ),
        "no",
    ),
    (
        SemanticQuestion(
            id="lawyer", question="Did the customer threaten legal action?", role=Role.CUSTOMER
        ),
        "no",
    ),
]
