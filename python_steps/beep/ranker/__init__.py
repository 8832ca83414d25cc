"""Beep's local responder model: candidate generation + a learned ranker over (conversation, person).

It answers "who should be alerted about this conversation now?" for a workspace of any size:

1. **State** (:mod:`beep.ranker.state`): one chronological pass over the workspace's messages keeps
   what is known *at that moment* about every person, channel and conversation (when each person
   last wrote here and anywhere, time-decayed activity shares, who answers whom, a text profile of
   what each person writes about). Nothing is looked up ahead: an example is scored right after its
   last context message is processed, so no feature can see the target message or its time.
2. **Candidates** (:mod:`beep.ranker.features`): the conversation's participants, the people
   @-mentioned, the channel's recent and most active people, the people whose past messages are
   most like the context, and the last speaker's usual partners. Their feature vectors.
3. **Ranker** (:mod:`beep.ranker.model`): LightGBM lambdarank over those vectors, a softmax
   temperature and a "nobody" classifier fitted on held-out train examples, so the output is a
   probability for each person and for nobody. Its training data come from one replay
   (:mod:`beep.ranker.training`); learning itself takes those arrays, not the database.

Memory grows with the number of people (a few floats and a 64-float text profile each) and the
candidates scored, never with people x vocabulary.
"""

#: The base model name a trained ranker is registered under (its jobs, exports and predictions). Here,
#: not in beep.finetune.local: telling a ranker from other models must not import the training code.
RANKER_BASE_MODEL = "lightgbm-lambdarank-ranker"
