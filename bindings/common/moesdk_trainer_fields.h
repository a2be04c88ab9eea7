/* The scalar fields of moe_trainer_options and moe_train_stats that every binding maps, one line each
 * (X-macros). The Python module and the SWIG layer (Java, C#) both expand these lists, so a field
 * appended to moe.h is bound everywhere by appending one line here.
 *
 *   X(binding type, field name in moe.h, camelCase name for Java and C#)
 *
 * The binding type is what Java and C# see: uint64_t becomes int64_t (Java has no unsigned long) and
 * on/off int32_t fields become bool; values are converted with static_cast. Python uses the field's
 * own C type and its moe.h name as the keyword. The pointer + count pairs (freeze_experts,
 * freeze_patterns) are not scalars: each binding maps them by hand.
 *
 * SWIG reads this file (moe.i %includes it) so that it expands the lists in the layer's headers. */
#ifndef MOESDK_TRAINER_FIELDS_H
#define MOESDK_TRAINER_FIELDS_H

#define MOESDK_TRAINER_OPTION_FIELDS(X)                          \
  X(float, lr, lr)                                               \
  X(float, weight_decay, weightDecay)                            \
  X(float, beta1, beta1)                                         \
  X(float, beta2, beta2)                                         \
  X(float, eps, eps)                                             \
  X(float, clip_norm, clipNorm)                                  \
  X(int64_t, warmup_steps, warmupSteps)                          \
  X(int64_t, total_steps, totalSteps)                            \
  X(int32_t, schedule, schedule)                                 \
  X(float, min_lr_ratio, minLrRatio)                             \
  X(int32_t, grad_accumulation, gradAccumulation)                \
  X(int64_t, seed, seed)                                         \
  X(float, label_smoothing, labelSmoothing)                      \
  X(int32_t, ignore_index, ignoreIndex)                          \
  X(float, aux_loss_coef, auxLossCoef)                           \
  X(float, z_loss_coef, zLossCoef)                               \
  X(float, sequence_balance_coef, sequenceBalanceCoef)           \
  X(float, bias_update_speed, biasUpdateSpeed)                   \
  X(int32_t, gating, gating)                                     \
  X(float, gumbel_temperature, gumbelTemperature)                \
  X(float, gumbel_temperature_final, gumbelTemperatureFinal)     \
  X(int32_t, nan_policy, nanPolicy)                              \
  X(int64_t, freeze_layers_below, freezeLayersBelow)             \
  X(int32_t, lora_rank, loraRank)                                \
  X(float, lora_alpha, loraAlpha)                                \
  X(bool, lora_attention, loraAttention)                         \
  X(bool, lora_experts, loraExperts)                             \
  X(int32_t, task, task)                                         \
  X(int32_t, num_labels, numLabels)                              \
  X(float, capacity_factor, capacityFactor)

#define MOESDK_TRAIN_STATS_FIELDS(X)        \
  X(double, loss, loss)                     \
  X(double, aux_loss, auxLoss)              \
  X(double, grad_norm, gradNorm)            \
  X(double, lr, lr)                         \
  X(int64_t, tokens, tokens)                \
  X(int64_t, step, step)                    \
  X(bool, skipped, skipped)                 \
  X(double, expert_balance, expertBalance)  \
  X(double, accuracy, accuracy)             \
  X(double, dropped_fraction, droppedFraction)

#endif /* MOESDK_TRAINER_FIELDS_H */
