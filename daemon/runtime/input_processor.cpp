#include "daemon/runtime/input_processor.hpp"

#include <spdlog/spdlog.h>

#include <map>

#include "daemon/core/logging.hpp"
#include "daemon/core/trace_context.hpp"

#include "daemon/runtime/workflow_transaction.hpp"
#include "handlers/inbound/messages.hpp"

namespace brickwork {
namespace {

class BatchApplier {
 public:
  BatchApplier(WorkflowTransaction& wt, const RuntimeContext& context, BatchReport& report,
               TimePoint now)
      : wt_(wt), context_(context), config_(context.config()), report_(report), now_(now) {}

  // A message parsed once, for the prepass that collects the workflows to
  // lock and then for applying it.
  struct ParsedInput {
    std::optional<Result<ParsedCommand>> command;
    std::optional<Result<ParsedCompletion>> completion;
    std::optional<int32_t> attempt;  // a completion's, when its token is brickwork's
  };

  ParsedInput parse(const KafkaMessage& message) const {
    ParsedInput parsed;
    if (message.topic == config_->kafka.topics.commands) {
      parsed.command = parse_command(message.payload);
    } else if (message.topic == config_->kafka.topics.events) {
      parsed.completion = parse_completion(message.payload);
      if (const auto& event = *parsed.completion) {
        parsed.attempt =
            context_.tokens().verify_callback_token(event->token, event->workflow_id, event->step);
      }
    }
    return parsed;
  }

  // The workflow an input will touch, if it is well formed and (for a
  // completion) carries a token brickwork issued: a forged event locks nothing.
  static std::optional<std::string> workflow_named_by(const ParsedInput& parsed) {
    if (parsed.command && *parsed.command) return (*parsed.command)->id;
    if (parsed.completion && *parsed.completion && parsed.attempt) {
      return (*parsed.completion)->workflow_id;
    }
    return std::nullopt;
  }

  // Takes what it needs out of `parsed` (a start's input is moved, not copied).
  void handle(const KafkaMessage& message, ParsedInput& parsed) {
    const TimePoint now = now_;
    if (parsed.command) {
      handle_command(message, *parsed.command);
    } else if (parsed.completion) {
      handle_completion(message, *parsed.completion, parsed.attempt);
    } else {
      dead_letter(message, "unknown_topic", "not a topic brickwork reads", now);
    }
  }

 private:
  void dead_letter(const KafkaMessage& message, const std::string& reason,
                   const std::string& text, TimePoint now) {
    spdlog::warn("dead letter: {} ({}) at {}[{}]@{}", reason, text, message.topic,
                 message.partition, message.offset);
    wt_.dead_letter(dead_letter_key(message.key),
                    dead_letter_json(reason, text, message.topic, message.partition,
                                     message.offset, message.key, message.payload, now));
    ++report_.dead_lettered;
  }

  void handle_command(const KafkaMessage& message, Result<ParsedCommand>& parsed) {
    const TimePoint now = now_;
    if (!parsed) {
      dead_letter(message, parsed.error().code, parsed.error().message, now);
      // A usable id still learns why its command went nowhere.
      if (auto id = extract_id(message.payload)) {
        // Text Postgres cannot store has a reason of its own: the sender can fix it.
        const std::string reason = parsed.error().code == "invalid_text" ? "invalid_text" : "invalid";
        wt_.publish_rejection_without_workflow(*id, "", Rejection{reason, parsed.error().message});
      }
      return;
    }
    ParsedCommand& command = *parsed;
    LogScope scope(LogScope::workflow(command.id));
    Input input;
    if (command.type == "start") {
      StartCommand start{command.id, command.workflow, std::move(command.input), std::nullopt};
      // An invalid traceparent is dropped, never a reason to refuse the command.
      if (auto header = message.header(kTraceparentHeader)) {
        start.traceparent = valid_traceparent(*header).value_or("");
      }
      if (auto it = config_->workflows.find(command.workflow); it != config_->workflows.end()) {
        start.definition = it->second;
      }
      input = std::move(start);
    } else if (command.type == "cancel") {
      input = CancelCommand{command.reason};
    } else if (command.type == "retry") {
      input = RetryCommand{};
    } else {
      input = SignalCommand{command.name, std::move(command.value)};
    }
    Decision decision = wt_.apply(command.id, input);
    ++report_.applied;
    if (decision.rejection) {
      dead_letter(message, decision.rejection->reason, decision.rejection->message, now);
      if (!decision.state) {
        wt_.publish_rejection_without_workflow(command.id, command.workflow, *decision.rejection);
      }
    }
  }

  void handle_completion(const KafkaMessage& message, const Result<ParsedCompletion>& parsed,
                         const std::optional<int32_t>& attempt) {
    const TimePoint now = now_;
    if (!parsed) {
      dead_letter(message, parsed.error().code, parsed.error().message, now);
      return;
    }
    const ParsedCompletion& event = *parsed;
    LogScope scope(LogScope::workflow(event.workflow_id, event.step, event.run_id));
    // The token first (checked in parse): a forged event touches no row and
    // cannot tell which workflows exist (the reason is the same either way).
    if (!attempt) {
      dead_letter(message, "bad_token",
                  "the token is not one brickwork issued for this workflow and step", now);
      return;
    }
    const auto& workflow = wt_.workflow(event.workflow_id);
    if (const Error* error = wt_.load_error(event.workflow_id)) {
      dead_letter(message, "unloadable", error->message, now);
      return;
    }
    if (!workflow) {
      dead_letter(message, "unknown_workflow", "no workflow '" + event.workflow_id + "'", now);
      return;
    }
    CompletionEvent completion;
    completion.step = event.step;
    completion.attempt = *attempt;
    completion.state = event.state;
    completion.run_id = event.run_id;
    completion.output = event.output;
    completion.message = event.message;
    if (event.oversized_output_bytes) {
      completion.error_code = "too_large";
      completion.message = "the job's output is " + std::to_string(*event.oversized_output_bytes) +
                           " bytes; the limit is " + std::to_string(kMaxOutputBytes);
    } else if (event.output_holds_nul) {
      completion.error_code = "invalid_output";
      completion.message = "the job's output holds U+0000 (\\u0000), which Postgres cannot store";
    }
    const Decision decision = wt_.apply(event.workflow_id, completion);
    ++report_.applied;
    // Refused by the engine (run_mismatch): the step goes on as it was.
    if (decision.rejection) {
      dead_letter(message, decision.rejection->reason, decision.rejection->message, now);
    } else if (event.output_holds_nul) {
      // The step has failed for it; the event itself is refused text, so its
      // sender finds it where every refused input goes.
      dead_letter(message, "invalid_text", completion.message, now);
    }
  }

  WorkflowTransaction& wt_;
  const RuntimeContext& context_;
  ConfigPtr config_;
  BatchReport& report_;
  TimePoint now_;
};

}  // namespace

Result<BatchReport> InputProcessor::apply_batch(WorkflowWriter& writer,
                                                const std::vector<KafkaMessage>& batch,
                                                TimePoint now) {
  Result<BatchReport> report = apply_batch(writer, batch, now, true);
  if (!report && report.error().code == "40001") {
    // An offset moved by another member, or any other serialization
    // failure: once more, reading the offsets under their locks.
    report = apply_batch(writer, batch, now, false);
  }
  return report;
}

Result<BatchReport> InputProcessor::apply_batch(WorkflowWriter& writer,
                                                const std::vector<KafkaMessage>& batch,
                                                TimePoint now, bool trust_written_offsets) {
  BatchReport report;
  PendingMetrics pending;
  std::map<std::pair<std::string, std::string>, int64_t> inputs;  // (topic, result) -> count
  WorkflowTransaction::Handoff handoff;
  std::vector<FailureNote> failures;
  std::map<StoreTx::TopicPartition, int64_t> written;
  std::vector<StoreTx::TopicPartition> partitions;
  for (const auto& message : batch) partitions.emplace_back(message.topic, message.partition);
  Status status = writer.transact([&](StoreTx& tx) {
    report = BatchReport{};
    pending.clear();
    inputs.clear();
    WorkflowTransaction wt(tx, context_, now, &pending);
    BatchApplier applier(wt, context_, report, now);
    std::map<StoreTx::TopicPartition, int64_t> next_offsets;
    bool read_offsets = !trust_written_offsets;
    for (const auto& partition : partitions) {
      auto known = written_offsets_.find(partition);
      if (known == written_offsets_.end()) {
        read_offsets = true;
        break;
      }
      next_offsets.emplace(partition, known->second);
    }
    if (read_offsets) next_offsets = tx.input_offsets_for_update(partitions);
    const std::map<StoreTx::TopicPartition, int64_t> offsets_before = next_offsets;
    // Every workflow the new inputs name, loaded and locked at once.
    std::vector<BatchApplier::ParsedInput> parsed(batch.size());
    std::vector<std::string> ids;
    for (size_t i = 0; i < batch.size(); ++i) {
      const KafkaMessage& message = batch[i];
      if (message.offset < next_offsets.at({message.topic, message.partition})) continue;
      parsed[i] = applier.parse(message);
      if (auto id = BatchApplier::workflow_named_by(parsed[i])) ids.push_back(std::move(*id));
    }
    wt.preload(ids);
    for (size_t i = 0; i < batch.size(); ++i) {
      const KafkaMessage& message = batch[i];
      const auto key = std::make_pair(message.topic, message.partition);
      auto it = next_offsets.find(key);
      if (message.offset < it->second) {
        ++report.skipped;  // applied before a crash or by a previous owner of the partition
        ++inputs[{message.topic, "duplicate"}];
        continue;
      }
      const int32_t dead_lettered_before = report.dead_lettered;
      applier.handle(message, parsed[i]);
      parsed[i] = {};  // a batch holds each large input once at a time, not twice
      ++inputs[{message.topic,
                report.dead_lettered > dead_lettered_before ? "dead_letter" : "applied"}];
      it->second = message.offset + 1;
    }
    // The offsets before finish(), which sends the batch's writes: they go
    // in the same statement instead of one more round trip.
    for (const auto& [key, next] : next_offsets) {
      if (next < 0) continue;
      if (read_offsets) {
        tx.set_input_offset(key.first, key.second, next);
      } else {
        tx.advance_input_offset(key.first, key.second, offsets_before.at(key), next);
      }
    }
    wt.finish();
    written = next_offsets;
    handoff = wt.take_handoff();
    failures = wt.take_failures();
  });
  if (!status) {
    // Committed or not, unknown: read the offsets again next time.
    for (const auto& partition : partitions) written_offsets_.erase(partition);
    return status.error();
  }
  for (const auto& [partition, next] : written) {
    if (next >= 0) written_offsets_[partition] = next;
  }
  log_failures(failures);
  Metrics& metrics = context_.metrics();
  pending.commit(&metrics);
  for (const auto& [key, count] : inputs) metrics.count_input(key.first, key.second, count);
  if (report.applied + report.dead_lettered > 0) {
    context_.outbox_wakeup().notify();
    deliver_effects(context_, std::move(handoff));
  }
  return report;
}

Status InputProcessor::dead_letter_unprocessable(WorkflowWriter& writer,
                                                 const KafkaMessage& message, const Error& error,
                                                 TimePoint now) {
  const ConfigPtr config = context_.config();
  written_offsets_.erase({message.topic, message.partition});  // read under its lock next time
  Status status = writer.transact([&](StoreTx& tx) {
    const int64_t next = tx.input_offset_for_update(message.topic, message.partition);
    if (message.offset < next) return;
    tx.add_outbox(config->kafka.topics.dead_letter, dead_letter_key(message.key),
                  dead_letter_json("internal_error", error.message, message.topic,
                                   message.partition, message.offset, message.key,
                                   message.payload, now));
    tx.set_input_offset(message.topic, message.partition, message.offset + 1);
  });
  if (status) {
    context_.metrics().count_input(message.topic, "dead_letter");
    context_.outbox_wakeup().notify();
  }
  return status;
}

}  // namespace brickwork
