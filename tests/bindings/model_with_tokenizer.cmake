# Makes a checkpoint directory with a tokenizer: the mixtral fixture's config.json and
# model.safetensors plus the DeepSeek-V3 tokenizer.json that scripts/setup fetches into
# $MOE_DATA_DIR (default ~/.cache/moesdk). The fixture's 320 ids are all valid tokens there.
#   cmake -DFIXTURE=<mixtral dir> -DOUT=<dir> -P model_with_tokenizer.cmake
if(DEFINED ENV{MOE_DATA_DIR})
  set(data_dir $ENV{MOE_DATA_DIR})
else()
  set(data_dir $ENV{HOME}/.cache/moesdk)
endif()
set(tokenizer ${data_dir}/deepseek_v3/tokenizer.json)
if(NOT EXISTS ${tokenizer})
  message(FATAL_ERROR "${tokenizer} is missing: run scripts/setup (it fetches the test data)")
endif()
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
file(CREATE_LINK ${FIXTURE}/config.json ${OUT}/config.json SYMBOLIC)
file(CREATE_LINK ${FIXTURE}/model.safetensors ${OUT}/model.safetensors SYMBOLIC)
file(CREATE_LINK ${tokenizer} ${OUT}/tokenizer.json SYMBOLIC)
