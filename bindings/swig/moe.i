/* The one SWIG interface over moe.h, for Java (package org.moesdk) and C# (namespace MoeSdk).
 *
 * What the languages see:
 * - Moe: the constants of moe.h without their MOE_ prefix (Moe.ERR_NOT_FOUND, Moe.LOG_DEBUG, ...),
 *   Moe.version() and Moe.statusString().
 * - Context, Model, Tokenizer, Trainer: the handles, as classes over a small C++ layer
 *   (src/moesdk_*.h) that calls moe.h. They free their handle on close() (Java, AutoCloseable) / Dispose() (C#, IDisposable)
 *   or, failing that, when collected; a call on a closed object throws instead of crashing.
 * - ContextOptions, LoadOptions, CreateOptions, GenerateOptions, TrainerOptions: the options structs,
 *   holding the library's defaults; TrainStats: what a training step reported.
 * - Failed calls throw MoeException with the status and the library's message.
 * - Arrays are the languages' own (int[] ids, long[] lengths, float[] logits); token callbacks are
 *   the languages' own functions (TokenListener and TrainListener in Java, Func<...> in C#).
 * Language-specific typemaps and code live in java/moe_java.i and csharp/moe_csharp.i.
 *
 * A new part of the C ABI is added as src/moesdk_<part>.h, one %include below, and its languages'
 * methods in the two language files.
 */
%module(directors="1") Moe

%{
#include "moe/moe.h"
#include "moesdk_context.h"
#include "moesdk_model.h"
#include "moesdk_tokenizer.h"
#include "moesdk_trainer.h"
%}

%include <stdint.i>

/* The language's typemaps, naming rules and code come first; the rules below take precedence. */
#if defined(SWIGJAVA)
%include "java/moe_java.i"
#elif defined(SWIGCSHARP)
%include "csharp/moe_csharp.i"
#endif

/* ---- moe.h: its constants and the version/status helpers; the classes below wrap the rest. ---- */
#define __attribute__(x) /* MOE_API's visibility attribute means nothing to SWIG's parser */
%rename("$ignore", %$isfunction, regextarget=1) "^moe_";
%rename("$ignore", %$isclass, regextarget=1) "^moe_";
%rename("$ignore", %$istypedef, regextarget=1) "^moe_";
%rename("%(strip:[MOE_])s", %$isconstant) "";
#if defined(SWIGCSHARP)
%rename(Version) moe_version;
%rename(StatusString) moe_status_string;
#else
%rename(version) moe_version;
%rename(statusString) moe_status_string;
#endif

%include "moe/moe_common.h"
%include "moe/moe.h"

/* ---- the classes ---- */
%include "moesdk_trainer_fields.h" /* the field lists the layer's headers expand */
%feature("director") moesdk::TokenHandler;
%feature("director") moesdk::ProgressHandler;
%feature("director") moesdk::BatchTokenHandler;
%newobject moesdk::Model::tokenizer;
%newobject moesdk::Model::create;
/* Reports are made by the library only, and their fields are const. */
%nodefaultctor moesdk::PluginInfo;
%nodefaultctor moesdk::ModelInfo;
%nodefaultctor moesdk::TrainStats;
%feature("valuewrapper") moesdk::PluginInfo;
%feature("valuewrapper") moesdk::ModelInfo;
%feature("valuewrapper") moesdk::TrainStats;

%include "moesdk_context.h"
%include "moesdk_tokenizer.h"
%include "moesdk_model.h"
%include "moesdk_trainer.h"
