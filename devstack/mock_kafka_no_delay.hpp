#pragma once
// Connections to librdkafka's mock brokers without Nagle's algorithm, as a
// real broker's (see mock_kafka_no_delay.cpp).
#include <cstdint>

namespace brickwork::devstack_detail {

// Connections accepted on this port from now on get TCP_NODELAY.
void answer_at_once_on(uint16_t port);
void forget_listener(uint16_t port);
// Whether `listener` (a listening socket) is on one of those ports.
bool is_mock_listener(int listener);

}  // namespace brickwork::devstack_detail
