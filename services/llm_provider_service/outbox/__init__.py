"""The durable result outbox: deliveries kept until their destination acknowledged them."""
